"""Planning a run: the density scan by price per carat, balanced partitions, the cached scan."""
