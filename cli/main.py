"""`caratflow <command>`: parse arguments, set up logging and settings, dispatch."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from cli import terminal
from shared.config import ConfigError

Handler = Callable[[argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    from cli import admin, db, demo, keys, notify, plan, pricing, retention, serve, sync

    parser = argparse.ArgumentParser(
        prog="caratflow",
        description="Diamond-inventory sync and search.",
        epilog=f"The log goes to {terminal.log_path().parent}/caratflow-<date>.log ({terminal.LOG_DIR_ENV} "
        "chooses the folder), warnings and errors also to the terminal; serve, host and emulator log to stderr.",
    )
    parser.add_argument("--json-logs", action="store_true", help="log on stderr, one JSON object per line")
    parser.add_argument("-v", "--verbose", action="store_true", help="log on stderr, debug records too")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for module in (demo, sync, plan, serve, keys, admin, pricing, notify, retention, db):
        module.register(commands)
    _register_emulator(commands)
    return parser


def _register_emulator(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`caratflow emulator` takes exactly `python -m emulator`'s flags, parsed (and `--help`ed) by this
    parser: one parse, so an unknown flag is reported as such and never swallowed."""
    from emulator import cli as emulator_cli

    emulator = commands.add_parser(
        "emulator", help="run the Nivoda feed emulator standalone", description=emulator_cli.DESCRIPTION
    )
    emulator_cli.add_arguments(emulator)
    emulator.set_defaults(handler=lambda args: emulator_cli.run(emulator_cli.config_from(emulator, args)))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.log_file = terminal.configure_logging(args.command, verbose=args.verbose, json_lines=args.json_logs)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"caratflow: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("caratflow: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
