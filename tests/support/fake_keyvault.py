"""An in-memory Key Vault and App Service managed-identity endpoint, as an azure-core HTTP transport.

Pass one `FakeKeyVault` as `transport=` to both `ManagedIdentityCredential` and `SecretClient` and the
SDK's whole request path runs against it: the unauthenticated probe, the 401 challenge, the token
request to IDENTITY_ENDPOINT, the authorized retry, retries on 5xx. `install(monkeypatch)` sets the
environment the credential reads and returns a fresh fake; `open_store` opens the app's secret store over it.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest, HttpResponse
from azure.core.rest._http_response_impl import HttpResponseImpl
from azure.core.utils import case_insensitive_dict

from shared.config import Settings, load_settings
from shared.secrets import CachedSecretStore, open_secret_store

IDENTITY_ENDPOINT = "http://identity.test/msi/token"
IDENTITY_HEADER = "fake-identity-header"
TENANT = "72f988bf-0000-4000-8000-000000000000"
RESOURCE = "https://vault.azure.net"
# The identity endpoint issues tokens for Key Vault and for Azure Database for PostgreSQL (Entra sign-in).
TOKEN_RESOURCES = frozenset({RESOURCE, "https://ossrdbms-aad.database.windows.net"})
CHALLENGE = f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", resource="{RESOURCE}"'
VAULT_HOST = re.compile(r"[0-9a-z-]{3,24}\.vault\.azure\.net")
SECRET_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
TOKEN_LIFETIME = 3600  # under 2 h, so MSAL does not schedule an early refresh
VAULT_URL = "https://caratflow-test.vault.azure.net/"


def _stream_of(body: bytes) -> Any:
    # The stream_download_generator a real transport passes; read() drains it into `content`.
    def generate(response: HttpResponse, pipeline: Any, decompress: bool = True, **kwargs: Any) -> Iterator[bytes]:
        yield body

    return generate


def respond(request: HttpRequest, status: int, body: Any = None, headers: dict[str, str] | None = None) -> HttpResponse:
    """A read, azure-core `rest` response, as RequestsTransport returns for a non-streamed request."""
    content = b"" if body is None else json.dumps(body).encode()
    all_headers = case_insensitive_dict(headers or {})
    all_headers["Content-Length"] = str(len(content))
    if body is not None:
        all_headers["Content-Type"] = "application/json; charset=utf-8"
    response = HttpResponseImpl(
        request=request,
        internal_response=io.BytesIO(content),  # what close() closes
        status_code=status,
        reason=HTTPStatus(status).phrase,
        content_type=all_headers.get("Content-Type"),
        headers=all_headers,
        stream_download_generator=_stream_of(content),
    )
    response.read()
    return response


def _error(code: str, message: str, inner: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return {"error": error}


@dataclass
class _Version:
    value: str
    content_type: str | None
    tags: dict[str, str]
    enabled: bool = True
    created: int = field(default_factory=lambda: int(time.time()))
    updated: int = field(default_factory=lambda: int(time.time()))


class FakeKeyVault(HttpTransport[HttpRequest, HttpResponse]):
    """Key Vault (any https://<name>.vault.azure.net) and the App Service identity endpoint, in memory."""

    def __init__(self, identity_endpoint: str = IDENTITY_ENDPOINT, identity_header: str = IDENTITY_HEADER) -> None:
        self.identity_endpoint = identity_endpoint
        self.identity_header = identity_header
        self.tokens: set[str] = set()  # every access token issued
        self.token_requests = 0
        self.token_resources: list[str] = []  # the resource of each token request, in order
        self.challenges = 0  # 401s with WWW-Authenticate sent
        self.requests: Counter[tuple[str, str]] = Counter()  # vault requests by (method, path)
        self._secrets: dict[tuple[str, str], dict[str, _Version]] = {}  # (host, name) -> version -> data
        self._failures: list[tuple[int, dict[str, str]]] = []
        self._lock = threading.Lock()

    # --- test hooks

    def fail_next(self, status: int, count: int = 1, *, retry_after: float | None = None) -> None:
        """Answer the next `count` vault requests with `status` (e.g. 503), whatever they ask."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        with self._lock:
            self._failures.extend([(status, headers)] * count)

    def vault_requests(self, method: str | None = None) -> int:
        """How many vault requests arrived (of one method, or all)."""
        return sum(n for (m, _), n in self.requests.items() if method is None or m == method)

    def versions(self, vault_url: str, name: str) -> dict[str, bool]:
        """The versions of a secret and whether each is enabled."""
        host = urlsplit(vault_url).netloc
        with self._lock:
            return {v: data.enabled for v, data in self._secrets.get((host, name), {}).items()}

    # --- HttpTransport

    def __enter__(self) -> FakeKeyVault:
        return self

    def __exit__(self, *args: object) -> None:
        return None

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def send(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        url = urlsplit(request.url)
        if f"{url.scheme}://{url.netloc}{url.path}" == self.identity_endpoint:
            return self._identity(request, parse_qs(url.query))
        if url.scheme == "https" and VAULT_HOST.fullmatch(url.netloc):
            with self._lock:
                return self._vault(request, url.netloc, url.path, parse_qs(url.query))
        raise AssertionError(f"FakeKeyVault: unexpected request {request.method} {request.url}")

    # --- the App Service managed-identity endpoint (api-version 2019-08-01)

    def _identity(self, request: HttpRequest, query: dict[str, list[str]]) -> HttpResponse:
        if request.method != "GET":
            return respond(request, 405, {"statusCode": 405, "message": "method not allowed"})
        if request.headers.get("X-IDENTITY-HEADER") != self.identity_header:
            return respond(request, 401, {"statusCode": 401, "message": "missing or wrong X-IDENTITY-HEADER"})
        if query.get("api-version") != ["2019-08-01"] or query.get("resource", [""])[0] not in TOKEN_RESOURCES:
            return respond(request, 400, {"statusCode": 400, "message": f"unexpected query {query}"})
        with self._lock:
            self.token_requests += 1
            self.token_resources.append(query["resource"][0])
            token = "fake-token-" + secrets.token_hex(8)
            self.tokens.add(token)
        body = {
            "access_token": token,
            "expires_on": str(int(time.time()) + TOKEN_LIFETIME),
            "resource": query["resource"][0],
            "token_type": "Bearer",
            "client_id": "00000000-0000-4000-8000-0000000000aa",
        }
        return respond(request, 200, body)

    # --- Key Vault

    def _vault(self, request: HttpRequest, host: str, path: str, query: dict[str, list[str]]) -> HttpResponse:
        self.requests[(request.method, path)] += 1
        if self._failures:
            status, headers = self._failures.pop(0)
            return respond(request, status, _error("ServiceUnavailable", "injected failure"), headers)
        authorization = request.headers.get("Authorization", "")
        if not (authorization.startswith("Bearer ") and authorization[len("Bearer ") :] in self.tokens):
            self.challenges += 1
            return respond(
                request,
                401,
                _error("Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."),
                {"WWW-Authenticate": CHALLENGE},
            )
        if not query.get("api-version"):
            message = "The api-version query parameter (?api-version=) is required for all requests."
            return respond(request, 400, _error("BadParameter", message))
        parts = path.split("/")  # "", "secrets", name[, version]
        if len(parts) not in (3, 4) or parts[1] != "secrets":
            return respond(request, 404, _error("NotFound", f"no route for {path}"))
        name = unquote(parts[2])
        version = unquote(parts[3]) if len(parts) == 4 else ""
        if not SECRET_NAME.fullmatch(name):
            return respond(request, 400, _error("BadParameter", f"The request URI contains an invalid name: {name}"))
        versions = self._secrets.setdefault((host, name), {})
        if request.method == "PUT" and not version:
            return self._set(request, host, name, versions)
        if request.method not in ("GET", "PATCH"):
            return respond(request, 405, _error("MethodNotAllowed", f"{request.method} {path}"))
        if not version and versions:
            version = max(versions, key=lambda v: versions[v].created)  # "latest"
        data = versions.get(version)
        if data is None:
            message = f"A secret with (name/id) {name}/{version} was not found in this key vault."
            return respond(request, 404, _error("SecretNotFound", message))
        if request.method == "PATCH":
            return self._update(request, host, name, version, data)
        if not data.enabled:
            message = "Operation get is not allowed on a disabled secret."
            return respond(request, 403, _error("Forbidden", message, inner="SecretDisabled"))
        return respond(request, 200, self._bundle(host, name, version, data, with_value=True))

    def _set(self, request: HttpRequest, host: str, name: str, versions: dict[str, _Version]) -> HttpResponse:
        body = _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            return respond(request, 400, _error("BadParameter", "Property value is required."))
        version = secrets.token_hex(16)
        data = _Version(value=body["value"], content_type=body.get("contentType"), tags=body.get("tags") or {})
        if isinstance(body.get("attributes"), dict) and "enabled" in body["attributes"]:
            data.enabled = bool(body["attributes"]["enabled"])
        # Creation order decides "latest", and versions made in the same second must still be ordered.
        data.created = data.updated = max([data.created, *(v.created + 1 for v in versions.values())])
        versions[version] = data
        return respond(request, 200, self._bundle(host, name, version, data, with_value=True))

    def _update(self, request: HttpRequest, host: str, name: str, version: str, data: _Version) -> HttpResponse:
        body = _json_body(request)
        if not isinstance(body, dict):
            return respond(request, 400, _error("BadParameter", "A JSON object is required."))
        attributes = body.get("attributes") or {}
        if "enabled" in attributes:
            data.enabled = bool(attributes["enabled"])
        if "contentType" in body:
            data.content_type = body["contentType"]
        if "tags" in body:
            data.tags = body["tags"] or {}
        data.updated = int(time.time())
        return respond(request, 200, self._bundle(host, name, version, data, with_value=False))

    @staticmethod
    def _bundle(host: str, name: str, version: str, data: _Version, *, with_value: bool) -> dict[str, Any]:
        bundle: dict[str, Any] = {
            "id": f"https://{host}/secrets/{name}/{version}",
            "attributes": {
                "enabled": data.enabled,
                "created": data.created,
                "updated": data.updated,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
            "tags": data.tags,
        }
        if data.content_type is not None:
            bundle["contentType"] = data.content_type
        if with_value:  # update answers carry the attributes only, like the real service
            bundle["value"] = data.value
        return bundle


def _json_body(request: HttpRequest) -> Any:
    content = request.content
    if isinstance(content, bytes):
        content = content.decode()
    if not isinstance(content, str) or not content:
        return None
    try:
        return json.loads(content)
    except json.JSONDecodeError:
        return None


def install(monkeypatch: pytest.MonkeyPatch) -> FakeKeyVault:
    """A fresh fake, with the environment ManagedIdentityCredential reads on App Service / Functions."""
    from azure.keyvault.secrets._shared import HttpChallengeCache

    monkeypatch.setenv("IDENTITY_ENDPOINT", IDENTITY_ENDPOINT)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    for other in ("IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET"):
        monkeypatch.delenv(other, raising=False)  # these would pick another managed-identity flavour
    # The SDK caches each vault's challenge process-wide; without this only the first test would see one.
    HttpChallengeCache.clear()
    return FakeKeyVault()


def open_store(settings: Settings, vault: FakeKeyVault, **client_kwargs: Any) -> CachedSecretStore:
    """The production factory with Key Vault *and* the managed-identity token endpoint answered by `vault`.

    The credential is the App Service / Functions flavour of managed identity (the environment `install`
    sets) over the same transport, so the SDK's real token request and challenge handling run against
    the fake. `client_kwargs` go to the SecretClient (retry_total, retry_backoff_factor, ...).
    """
    from azure.identity import ManagedIdentityCredential

    credential = ManagedIdentityCredential(transport=vault)
    return open_secret_store(settings, credential=credential, transport=vault, **client_kwargs)


def open_vault(vault: FakeKeyVault, *, ttl: float = 0, **client_kwargs: Any) -> CachedSecretStore:
    """`open_store` on settings for VAULT_URL; SDK retries kept but with millisecond back-off."""
    settings = load_settings(secret_store="keyvault", key_vault_url=VAULT_URL, secret_cache_ttl_seconds=ttl)
    client_kwargs.setdefault("retry_backoff_factor", 0.01)
    return open_store(settings, vault, **client_kwargs)


def gets(vault: FakeKeyVault, name: str, version: str) -> int:
    """How many reads of exactly that version reached the vault."""
    return vault.requests[("GET", f"/secrets/{name}/{version}")]
