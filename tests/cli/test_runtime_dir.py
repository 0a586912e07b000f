"""No command prints a warning a user cannot act on: the embedded PostgreSQL starts without
XDG_RUNTIME_DIR (containers, CI, cron) and platformdirs has nothing to warn about."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from shared.db import embedded

CARATFLOW = Path(sys.executable).with_name("caratflow")


def test_the_embedded_database_starts_without_xdg_runtime_dir_and_without_a_warning(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "XDG_RUNTIME_DIR"}
    env |= {
        "CARATFLOW_LOCAL_SETTINGS": str(tmp_path / "none.json"),
        "CARATFLOW_LOG_DIR": str(tmp_path / "logs"),
        "EMBEDDED_PG_DIR": str(tmp_path / "pg"),
    }
    env.pop("DATABASE_URL", None)
    try:
        migrated = subprocess.run(
            [str(CARATFLOW), "db", "migrate"], env=env, capture_output=True, text=True, timeout=120
        )
    finally:
        stopped = subprocess.run([str(CARATFLOW), "db", "stop"], env=env, capture_output=True, text=True, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    assert "applied:" in migrated.stdout
    assert "Warning" not in migrated.stderr, migrated.stderr
    assert stopped.stdout.strip() == "embedded postgres stopped", stopped.stderr
    assert "Warning" not in stopped.stderr, stopped.stderr


def test_the_runtime_dir_is_private_to_this_user() -> None:
    path = embedded.runtime_dir()
    info = path.lstat()
    assert stat.S_ISDIR(info.st_mode)
    assert info.st_uid == os.geteuid()
    assert stat.S_IMODE(info.st_mode) == 0o700
