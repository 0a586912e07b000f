"""`python -m emulator ...`: see emulator.cli."""

import sys

from emulator.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
