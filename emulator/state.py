"""`EmulatorState`: everything one running emulator holds, shared by the ASGI app and its admin endpoints."""

from __future__ import annotations

from dataclasses import dataclass

from emulator.auth import TokenStore
from emulator.config import EmulatorConfig
from emulator.faults import FaultInjector
from emulator.inventory import Inventory
from emulator.service import FeedService
from emulator.stats import Stats


@dataclass
class EmulatorState:
    """Everything one running emulator holds; also usable directly from Python (tests, bench)."""

    config: EmulatorConfig
    inventory: Inventory
    tokens: TokenStore
    faults: FaultInjector
    stats: Stats
    service: FeedService

    @classmethod
    def build(cls, config: EmulatorConfig, inventory: Inventory | None = None) -> EmulatorState:
        inventory = inventory if inventory is not None else Inventory.from_config(config)
        tokens = TokenStore(config.username, config.password.get_secret_value(), config.token_ttl_seconds)
        faults = FaultInjector(config.fault_settings(), config.seed)
        stats = Stats()
        return cls(config, inventory, tokens, faults, stats, FeedService(config, inventory, tokens, faults, stats))
