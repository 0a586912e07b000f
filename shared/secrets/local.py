"""The secret store on a laptop: one JSON file, private to the user, safe for concurrent CLI runs."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from shared.secrets.base import SecretNotFound, SecretStoreUnavailable, check_name, check_version

# {name: {version: {"value": str, "enabled": bool, "created_at": iso-utc}}}
Document = dict[str, dict[str, dict[str, Any]]]


class LocalSecretStore:
    """Versions kept in a JSON file (mode 0600).

    Writers hold an exclusive flock on a sibling `.lock` file and replace the file atomically, so
    concurrent processes never lose a version; readers need no lock since they always see a whole file.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def get(self, name: str, version: str) -> str:
        check_name(name)
        check_version(version)
        entry = self._read().get(name, {}).get(version)
        if entry is None:
            raise SecretNotFound(f"secret {name} version {version}: not found in {self.path}")
        if not entry["enabled"]:
            raise SecretNotFound(f"secret {name} version {version}: disabled")
        value: str = entry["value"]  # a str: _read checked every entry's shape
        return value

    def create_version(self, name: str, value: str) -> str:
        check_name(name)
        if not isinstance(value, str):
            raise TypeError("a secret value must be a str")
        with self._locked():
            document = self._read()
            versions = document.setdefault(name, {})
            version = secrets.token_hex(16)  # 32 lowercase hex digits, like Key Vault's ids
            while version in versions:  # pragma: no cover - 128 random bits do not collide in practice
                version = secrets.token_hex(16)
            versions[version] = {
                "value": value,
                "enabled": True,
                "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            }
            self._write(document)
        return version

    def disable_version(self, name: str, version: str) -> None:
        check_name(name)
        check_version(version)
        with self._locked():
            document = self._read()
            entry = document.get(name, {}).get(version)
            if entry is None:
                raise SecretNotFound(f"secret {name} version {version}: not found in {self.path}")
            entry["enabled"] = False
            self._write(document)

    def ping(self) -> None:
        # A missing file is a store with no keys yet; unreadable or corrupt raises SecretStoreUnavailable.
        self._read()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed, also if the process dies
            yield
        finally:
            os.close(fd)

    def _read(self) -> Document:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecretStoreUnavailable(f"{self.path}: cannot read the secret store ({exc})") from exc
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            # Never start afresh over a damaged file: that would orphan every API key signed with it.
            raise SecretStoreUnavailable(f"{self.path}: the secret store is corrupt ({exc}); fix or move it") from exc
        problem = _shape_problem(document)
        if problem:
            raise SecretStoreUnavailable(f"{self.path}: the secret store is corrupt ({problem}); fix or move it")
        return cast(Document, document)  # _shape_problem found none

    def _write(self, document: Document) -> None:
        # mkstemp creates the file 0600, and os.replace keeps that mode on the final name.
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


def _shape_problem(document: object) -> str | None:
    """What is wrong with the document's shape, or None."""
    if not isinstance(document, dict):
        return "top level is not an object"
    for name, versions in document.items():
        if not isinstance(versions, dict):
            return f"{name!r} is not an object of versions"
        for version, entry in versions.items():
            if not (
                isinstance(entry, dict)
                and isinstance(entry.get("value"), str)
                and isinstance(entry.get("enabled"), bool)
            ):
                return f"{name!r} version {version!r} lacks a string value or a boolean enabled"
    return None
