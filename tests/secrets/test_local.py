"""The local file store: versions in a private JSON file, two processes writing at once, corrupt files."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from shared.secrets import LocalSecretStore, SecretNotFound, SecretStoreUnavailable

PROJECT = Path(__file__).resolve().parents[2]
VERSION_ID = re.compile(r"[0-9a-f]{32}")
UNKNOWN_VERSION = "0" * 32


def test_local_store_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    store = LocalSecretStore(path)
    first = store.create_version("client-30-hmac", "one")
    second = store.create_version("client-30-hmac", "two")

    assert VERSION_ID.fullmatch(first)
    assert VERSION_ID.fullmatch(second)
    assert first != second
    reopened = LocalSecretStore(path)
    assert reopened.get("client-30-hmac", first) == "one"
    assert reopened.get("client-30-hmac", second) == "two"

    reopened.disable_version("client-30-hmac", first)
    with pytest.raises(SecretNotFound, match="disabled"):
        store.get("client-30-hmac", first)
    assert store.get("client-30-hmac", second) == "two"
    with pytest.raises(SecretNotFound):
        store.get("client-30-hmac", UNKNOWN_VERSION)
    with pytest.raises(SecretNotFound):
        store.get("never-created", first)
    with pytest.raises(SecretNotFound):
        store.disable_version("client-30-hmac", UNKNOWN_VERSION)

    entry = json.loads(path.read_text())["client-30-hmac"][second]
    assert entry["value"] == "two"
    assert entry["enabled"] is True
    assert datetime.fromisoformat(entry["created_at"]).utcoffset() == timedelta(0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secrets.json", "secrets.json.lock"]  # no temp files


def test_local_store_file_is_private_and_its_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "secrets.json"
    LocalSecretStore(path).create_version("client-31-hmac", "value")

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.with_name("secrets.json.lock").stat().st_mode) == 0o600


def test_local_store_refuses_bad_names_and_versions(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path / "secrets.json")
    with pytest.raises(ValueError, match="secret name"):
        store.create_version("bad name", "value")
    with pytest.raises(ValueError, match="version"):
        store.get("client-32-hmac", "")
    assert not (tmp_path / "secrets.json").exists()


# Each child says it is ready, waits for "go" (so the two really overlap), then adds 20 versions.
CHILD = """
import sys
from pathlib import Path
from shared.secrets.local import LocalSecretStore
store = LocalSecretStore(Path(sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()
for i in range(20):
    print(store.create_version("shared-hmac", f"{sys.argv[2]}-{i}"), flush=True)
"""


def test_two_processes_adding_versions_at_once_lose_none(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), tag],
            cwd=PROJECT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=60) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()

    for child, (_, stderr) in zip(children, outputs, strict=True):
        assert child.returncode == 0, stderr
    versions = {tag: out.split() for tag, (out, _) in zip("ab", outputs, strict=True)}
    store = LocalSecretStore(path)
    assert len({*versions["a"], *versions["b"]}) == 40
    assert len(json.loads(path.read_text())["shared-hmac"]) == 40
    for tag, ids in versions.items():
        assert [store.get("shared-hmac", version) for version in ids] == [f"{tag}-{i}" for i in range(20)]


@pytest.mark.parametrize(
    "damage",
    ['{"client-33-hmac": {"', "[]", '{"client-33-hmac": {"00": {"value": 1, "enabled": true}}}'],
    ids=["truncated", "not-an-object", "wrong-types"],
)
def test_a_corrupt_local_store_is_unavailable_and_left_alone(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "secrets.json"
    path.write_text(damage)
    store = LocalSecretStore(path)

    with pytest.raises(SecretStoreUnavailable, match=re.escape(str(path))):
        store.get("client-33-hmac", UNKNOWN_VERSION)
    with pytest.raises(SecretStoreUnavailable, match="corrupt"):
        store.create_version("client-33-hmac", "value")
    assert path.read_text() == damage  # never reset behind the user's back


# --- reachability (/api/ready)


def test_local_ping_accepts_a_missing_file_and_refuses_a_corrupt_one(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    LocalSecretStore(path).ping()
    path.write_text("[]")
    with pytest.raises(SecretStoreUnavailable, match="corrupt"):
        LocalSecretStore(path).ping()
