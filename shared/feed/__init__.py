"""The supplier side: feed sources, their pages and errors, the shared request budget, the registry."""
