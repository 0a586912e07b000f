"""A local Durable Functions host over the SDK's own replay engine and PostgreSQL (no Functions host needed)."""
