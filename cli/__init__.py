"""The `caratflow` command line: demo, planning, database and emulator commands."""
