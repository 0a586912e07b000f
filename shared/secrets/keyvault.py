"""The secret store in Azure: Key Vault through azure-keyvault-secrets, reached with the app's identity."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient

from shared.secrets.base import SecretNotFound, SecretStoreUnavailable, check_name, check_version

CONTENT_TYPE = "application/vnd.caratflow.api-key-hmac"
# A version no secret has (Key Vault's are random): reading it answers 404 from a vault that is up and
# lets this identity read, and anything else from one that is not.
_PROBE = ("caratflow-reachability-probe", "0" * 32)


def _is_disabled(exc: HttpResponseError) -> bool:
    # Key Vault refuses to read a disabled version with 403 Forbidden / inner code SecretDisabled; a 403
    # for anything else (missing access policy or RBAC role) is a real outage of this store.
    error = exc.error
    if exc.status_code != 403 or error is None:
        return False
    inner = error.innererror or {}
    return error.code == "Forbidden" and inner.get("code") == "SecretDisabled"


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn the SDK's errors into the store's."""
    try:
        yield
    except ResourceNotFoundError as exc:
        raise SecretNotFound(f"{what}: not found") from exc
    except HttpResponseError as exc:
        if _is_disabled(exc):
            raise SecretNotFound(f"{what}: disabled") from exc
        detail = f"{exc.error.code}: {exc.error.message}" if exc.error else exc.reason
        raise SecretStoreUnavailable(f"{what}: Key Vault answered {exc.status_code} ({detail})") from exc
    except AzureError as exc:  # ServiceRequestError, ClientAuthenticationError (the identity), timeouts...
        raise SecretStoreUnavailable(f"{what}: Key Vault unreachable: {exc.message}") from exc


class KeyVaultSecretStore:
    """Secrets as Key Vault secret versions. `client_kwargs` go to SecretClient (retry_total, transport...)."""

    def __init__(
        self,
        vault_url: str,
        credential: TokenCredential,
        *,
        content_type: str = CONTENT_TYPE,
        **client_kwargs: Any,
    ) -> None:
        self.client = SecretClient(vault_url, credential, **client_kwargs)
        self.content_type = content_type
        self._credential = credential

    @property
    def vault_url(self) -> str:
        return self.client.vault_url

    def get(self, name: str, version: str) -> str:
        check_name(name)
        check_version(version)
        with _translated(f"secret {name} version {version}"):
            secret = self.client.get_secret(name, version)
        if secret.value is None:
            raise SecretStoreUnavailable(f"secret {name} version {version}: Key Vault returned no value")
        return secret.value

    def create_version(self, name: str, value: str) -> str:
        check_name(name)
        with _translated(f"secret {name}: new version"):
            secret = self.client.set_secret(name, value, content_type=self.content_type)
        if not secret.properties.version:
            raise SecretStoreUnavailable(f"secret {name}: Key Vault returned no version id")
        return secret.properties.version

    def disable_version(self, name: str, version: str) -> None:
        check_name(name)
        check_version(version)
        with _translated(f"secret {name} version {version}: disable"):
            self.client.update_secret_properties(name, version, enabled=False)

    def ping(self) -> None:
        try:
            # No retries: a probe that retries hides the outage it is looking for.
            with _translated("reachability probe"):
                self.client.get_secret(*_PROBE, retry_total=0)
        except SecretNotFound:
            return  # the healthy answer

    def close(self) -> None:
        """Close the client's connections, and the credential's."""
        self.client.close()
        close: Callable[[], None] | None = getattr(self._credential, "close", None)
        if close is not None:
            close()
