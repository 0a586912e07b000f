"""The HMAC secrets of API keys: Key Vault in Azure, a local file on a laptop, a TTL cache in front."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.secrets.base import SecretNotFound, SecretStore, SecretStoreUnavailable
from shared.secrets.cache import CachedSecretStore
from shared.secrets.local import LocalSecretStore
from shared.secrets.store import open_secret_store

if TYPE_CHECKING:
    from shared.secrets.keyvault import KeyVaultSecretStore

__all__ = [
    "CachedSecretStore",
    "KeyVaultSecretStore",
    "LocalSecretStore",
    "SecretNotFound",
    "SecretStore",
    "SecretStoreUnavailable",
    "open_secret_store",
]


def __getattr__(name: str) -> Any:
    # Loaded on first use: importing the Azure SDK costs the local CLI ~150 ms it never needs.
    if name == "KeyVaultSecretStore":
        from shared.secrets.keyvault import KeyVaultSecretStore

        return KeyVaultSecretStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
