"""Durable orchestrators: deterministic control flow only (no I/O, clocks or randomness)."""
