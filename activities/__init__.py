"""Durable activities: thin adapters from Azure's triggers to the domain in `shared/`."""
