"""A Nivoda-compatible GraphQL feed server on 127.0.0.1: the supplier, played for tests and demos.

It shares no code with the rest of caratflow on purpose: a bug in the feed client must not be
hidden by the same bug here. Protocol: /work/shared/reference/nivoda-feed.md.
"""

from emulator.cli import main
from emulator.config import EmulatorConfig, FaultSettings
from emulator.inventory import Inventory
from emulator.server import RunningEmulator
from emulator.ticks import TickSummary

__all__ = ["EmulatorConfig", "FaultSettings", "Inventory", "RunningEmulator", "TickSummary", "main"]
