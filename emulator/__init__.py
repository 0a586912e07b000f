"""A Nivoda-compatible GraphQL feed server on 127.0.0.1: the supplier, played for tests and demos.

It shares no code with the rest of caratflow on purpose: a bug in the feed client must not be
hidden by the same bug here. It speaks Nivoda's GraphQL API as its public clients use it: POST
/api/diamonds; log in with `authenticate { username_and_password(...) { token } }`; send the token as
`Authorization: Bearer` or through an `as(token:)` wrapper; `diamonds_by_query` pages of at most 50.
"""

from emulator.cli import main
from emulator.config import EmulatorConfig, FaultSettings
from emulator.inventory import Inventory
from emulator.server import RunningEmulator
from emulator.ticks import TickSummary

__all__ = ["EmulatorConfig", "FaultSettings", "Inventory", "RunningEmulator", "TickSummary", "main"]
