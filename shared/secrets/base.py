"""What every secret store is: its protocol, its two errors, and the name and version rules it enforces."""

from __future__ import annotations

import re
from typing import Protocol

# Key Vault's rule for secret names; the local store enforces it too, so a name that works on a laptop
# works in Azure.
_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
# Key Vault's version ids are 32 hex digits. An empty version would silently mean "latest" to the SDK,
# and get() promises an exact version, so anything else is refused before it reaches a store.
_VERSION = re.compile(r"[0-9a-fA-F]{32}")


class SecretNotFound(LookupError):
    """The secret name or version is unknown, or that version is disabled."""


class SecretStoreUnavailable(RuntimeError):
    """The store could not be reached, or answered with an error."""


def check_name(name: str) -> str:
    """`name` if it is a valid secret name (1-127 letters, digits, dashes); else ValueError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"invalid secret name {name!r}: use 1-127 letters, digits and dashes")
    return name


def check_version(version: str) -> str:
    """`version` if it looks like a version id (32 hex digits); else ValueError."""
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise ValueError(f"invalid secret version {version!r}: expected 32 hex digits")
    return version


class SecretStore(Protocol):
    def get(self, name: str, version: str) -> str:
        """The value of exactly that version; SecretNotFound if unknown or disabled."""
        ...

    def create_version(self, name: str, value: str) -> str:
        """Store `value` as a new version of `name` (created if needed); return the new version id."""
        ...

    def disable_version(self, name: str, version: str) -> None:
        """Make that version unreadable; SecretNotFound if unknown."""
        ...

    def ping(self) -> None:
        """Reach the store with one cheap read; SecretStoreUnavailable if it cannot be read now."""
        ...
