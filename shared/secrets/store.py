"""The secret store the settings name, behind the TTL cache."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.secrets.base import SecretStore
from shared.secrets.cache import CachedSecretStore

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from shared.config import Settings


def open_secret_store(
    settings: Settings, *, credential: TokenCredential | None = None, **client_kwargs: Any
) -> CachedSecretStore:
    """The configured store, behind the cache.

    For secret_store=keyvault only: `credential` is the identity that reads the vault (the app's, through
    DefaultAzureCredential, when None) and `client_kwargs` go to the SecretClient (retry_total, transport, ...).
    """
    # Each backend is imported only when chosen: the local store must not pay for (or need) the Azure SDK.
    match settings.secret_store:
        case "local":
            from shared.secrets.local import LocalSecretStore

            backend: SecretStore = LocalSecretStore(settings.local_secrets_path)
        case "keyvault":
            backend = _open_key_vault(settings, credential, client_kwargs)
        case other:
            raise ValueError(f"unknown secret_store {other!r}")
    return CachedSecretStore(backend, settings.secret_cache_ttl_seconds)


def _open_key_vault(
    settings: Settings, credential: TokenCredential | None, client_kwargs: dict[str, Any]
) -> SecretStore:
    from shared.secrets.keyvault import KeyVaultSecretStore

    if not settings.key_vault_url:
        raise ValueError("secret_store=keyvault needs key_vault_url")
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return KeyVaultSecretStore(settings.key_vault_url, credential, **client_kwargs)
