"""Nivoda's GraphQL diamond feed: queries, item validation, and the HTTP client."""
