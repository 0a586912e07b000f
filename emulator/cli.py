"""The emulator's command line: `python -m emulator --port 4100 --size 100000 --seed 7 --rate-429 0.05 ...`
(also `caratflow emulator ...`, which adds these same flags to its own sub-command).

Every `EmulatorConfig` field is a flag (`short_page_rate` -> `--short-page-rate`); flags override
`EMULATOR_*` environment variables. Runs on 127.0.0.1 until Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from typing import get_origin

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from emulator.config import EmulatorConfig, FaultSettings
from emulator.server import HOST, bind, serve
from emulator.state import EmulatorState

DESCRIPTION = "A Nivoda-compatible GraphQL feed on 127.0.0.1, for tests and demos."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=DESCRIPTION)
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per `EmulatorConfig` field, on `parser` (this module's own, or `caratflow emulator`)."""
    # Flags are generated from the config model so the CLI can never drift from it; pydantic
    # validates and converts the strings.
    server = parser.add_argument_group("server and inventory")
    faults = parser.add_argument_group("faults and quirks (also at run time: PUT /_emulator/faults)")
    for name, field in EmulatorConfig.model_fields.items():
        group = faults if name in FaultSettings.model_fields else server
        flag = "--" + name.replace("_", "-")
        if field.annotation is bool:
            group.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=field.description
            )
        elif get_origin(field.annotation) is list:
            # One flag, several values (`--failing-dpc-from 100 200`); pydantic converts each.
            group.add_argument(
                flag,
                dest=name,
                default=None,
                nargs="*",
                metavar=name.upper(),
                help=f"{field.description or ''} (default: {_default(name, field)})".strip(),
            )
        else:
            group.add_argument(
                flag,
                dest=name,
                default=None,
                metavar=name.upper(),
                help=f"{field.description or ''} (default: {_default(name, field)})".strip(),
            )


def _default(name: str, field: FieldInfo) -> object:
    """The default as a user reads it (a default_factory is called, not shown as PydanticUndefined)."""
    return "hidden" if name == "password" else field.get_default(call_default_factory=True)


def config_from(parser: argparse.ArgumentParser, args: argparse.Namespace) -> EmulatorConfig:
    """The config the parsed flags ask for (unset flags fall back to `EMULATOR_*`, then the defaults).

    Only the config's own fields are read: under `caratflow emulator` the namespace also holds the
    caratflow command's options.
    """
    given = {name: getattr(args, name) for name in EmulatorConfig.model_fields if getattr(args, name, None) is not None}
    try:
        return EmulatorConfig(**given)
    except ValidationError as exc:
        parser.error(str(exc))  # exits 2, naming the field


def run(config: EmulatorConfig) -> int:
    """Build the inventory, print where it serves, serve until Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    state = EmulatorState.build(config)
    sock = bind(config.port)
    port = sock.getsockname()[1]
    elapsed = time.perf_counter() - started
    print(
        f"emulator: {len(state.inventory):,} stones (seed {config.seed}) built in {elapsed:.1f} s\n"
        f"  GraphQL  http://{HOST}:{port}/api/diamonds\n"
        f"  admin    http://{HOST}:{port}/_emulator/health\n"
        f"  login    username={config.username!r} (password from EMULATOR_PASSWORD or --password)",
        flush=True,
    )
    try:
        serve(state, sock)
    except KeyboardInterrupt:
        # uvicorn re-raises the Ctrl-C it handled once the server has shut down cleanly.
        print("emulator: stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    return run(config_from(parser, parser.parse_args(argv)))
