"""One sync run of a feed: bookkeeping, fetching partitions, consolidating, finalizing."""
