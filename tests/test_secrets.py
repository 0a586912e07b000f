"""Secret stores: Key Vault through the real SDK and managed identity against an in-memory vault, the TTL
cache in front of any store, and the local file store (including two processes writing at once)."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import fake_keyvault
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

from shared.config import load_settings
from shared.secrets import (
    CachedSecretStore,
    KeyVaultSecretStore,
    LocalSecretStore,
    SecretNotFound,
    SecretStoreUnavailable,
    open_secret_store,
)

PROJECT = Path(__file__).resolve().parent.parent
VAULT_URL = "https://caratflow-test.vault.azure.net/"
VERSION_ID = re.compile(r"[0-9a-f]{32}")
UNKNOWN_VERSION = "0" * 32


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> fake_keyvault.FakeKeyVault:
    return fake_keyvault.install(monkeypatch)


def open_vault(fake: fake_keyvault.FakeKeyVault, *, ttl: float = 0, **client_kwargs: object) -> CachedSecretStore:
    """The production factory, over the fake; SDK retries kept but with millisecond back-off."""
    settings = load_settings(secret_store="keyvault", key_vault_url=VAULT_URL, secret_cache_ttl_seconds=ttl)
    client_kwargs.setdefault("retry_backoff_factor", 0.01)
    return open_secret_store(settings, transport=fake, **client_kwargs)


def gets(fake: fake_keyvault.FakeKeyVault, name: str, version: str) -> int:
    return fake.requests[("GET", f"/secrets/{name}/{version}")]


# --- Key Vault, through SecretClient + ManagedIdentityCredential


def test_keyvault_versions_round_trip_with_one_challenge_and_one_token(fake: fake_keyvault.FakeKeyVault) -> None:
    store = open_vault(fake)
    assert isinstance(store.store, KeyVaultSecretStore)

    first = store.create_version("client-7-hmac", "secret-one")
    second = store.create_version("client-7-hmac", "secret-two")

    assert VERSION_ID.fullmatch(first)
    assert VERSION_ID.fullmatch(second)
    assert first != second
    assert store.get("client-7-hmac", first) == "secret-one"
    assert store.get("client-7-hmac", second) == "secret-two"
    # The first request went out unauthenticated, drew the 401 challenge, then was re-sent with a token;
    # everything after reused the challenge and the token.
    assert fake.challenges == 1
    assert fake.token_requests == 1
    assert len(fake.tokens) == 1
    assert fake.requests[("PUT", "/secrets/client-7-hmac")] == 3  # probe + two authorized sets
    assert gets(fake, "client-7-hmac", first) == gets(fake, "client-7-hmac", second) == 1
    assert fake.versions(VAULT_URL, "client-7-hmac") == {first: True, second: True}


def test_a_new_client_skips_the_challenge_but_needs_its_own_token(fake: fake_keyvault.FakeKeyVault) -> None:
    version = open_vault(fake).create_version("client-8-hmac", "s3cret")
    assert (fake.challenges, fake.token_requests) == (1, 1)

    assert open_vault(fake).get("client-8-hmac", version) == "s3cret"

    # The SDK caches challenges per vault host for the whole process; tokens live in each credential.
    assert (fake.challenges, fake.token_requests) == (1, 2)


def test_unknown_names_and_versions_are_not_found(fake: fake_keyvault.FakeKeyVault) -> None:
    store = open_vault(fake)
    with pytest.raises(SecretNotFound) as missing_name:
        store.get("never-created", UNKNOWN_VERSION)
    assert isinstance(missing_name.value.__cause__, ResourceNotFoundError)

    store.create_version("client-9-hmac", "value")
    with pytest.raises(SecretNotFound):
        store.get("client-9-hmac", UNKNOWN_VERSION)
    with pytest.raises(SecretNotFound):
        store.disable_version("client-9-hmac", UNKNOWN_VERSION)


def test_a_disabled_version_is_not_found_and_the_others_still_are(fake: fake_keyvault.FakeKeyVault) -> None:
    store = open_vault(fake, ttl=300)
    old = store.create_version("client-10-hmac", "old")
    new = store.create_version("client-10-hmac", "new")
    assert store.get("client-10-hmac", old) == "old"  # now cached

    store.disable_version("client-10-hmac", old)

    with pytest.raises(SecretNotFound, match="disabled") as disabled:
        store.get("client-10-hmac", old)  # the cached copy went with the disable
    cause = disabled.value.__cause__
    assert isinstance(cause, HttpResponseError)
    assert cause.status_code == 403
    assert store.get("client-10-hmac", new) == "new"
    assert fake.versions(VAULT_URL, "client-10-hmac") == {old: False, new: True}


def test_an_outage_longer_than_the_retries_is_unavailable(fake: fake_keyvault.FakeKeyVault) -> None:
    store = open_vault(fake, retry_total=2)
    version = store.create_version("client-11-hmac", "value")
    fake.fail_next(503, count=3)  # the first try and both retries

    with pytest.raises(SecretStoreUnavailable, match="503") as outage:
        store.get("client-11-hmac", version)

    cause = outage.value.__cause__
    assert isinstance(cause, HttpResponseError)
    assert cause.status_code == 503
    assert gets(fake, "client-11-hmac", version) == 3
    assert store.get("client-11-hmac", version) == "value"  # the vault is back, nothing was cached


def test_a_single_503_is_retried_by_the_sdk(fake: fake_keyvault.FakeKeyVault) -> None:
    store = open_vault(fake)
    version = store.create_version("client-12-hmac", "value")
    fake.fail_next(503)

    assert store.get("client-12-hmac", version) == "value"
    assert gets(fake, "client-12-hmac", version) == 2


def test_a_failing_identity_endpoint_makes_the_store_unavailable(
    fake: fake_keyvault.FakeKeyVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "not-what-the-endpoint-expects")
    store = open_vault(fake)

    with pytest.raises(SecretStoreUnavailable) as unavailable:
        store.create_version("client-13-hmac", "value")

    assert isinstance(unavailable.value.__cause__, ClientAuthenticationError)
    assert fake.token_requests == 0
    assert not fake.tokens
    assert fake.versions(VAULT_URL, "client-13-hmac") == {}


@pytest.mark.parametrize("name", ["", "has space", "under_score", "dots.in.it", "ünïcode", "x" * 128])
def test_bad_secret_names_are_refused_before_any_request(fake: fake_keyvault.FakeKeyVault, name: str) -> None:
    store = open_vault(fake)
    with pytest.raises(ValueError, match="secret name"):
        store.create_version(name, "value")
    with pytest.raises(ValueError, match="secret name"):
        store.get(name, UNKNOWN_VERSION)
    with pytest.raises(ValueError, match="secret name"):
        store.disable_version(name, UNKNOWN_VERSION)
    assert fake.vault_requests() == 0


@pytest.mark.parametrize("version", ["", "latest", "0" * 31, "g" * 32, "../" + "0" * 29])
def test_bad_versions_are_refused_so_get_never_means_latest(fake: fake_keyvault.FakeKeyVault, version: str) -> None:
    store = open_vault(fake)
    with pytest.raises(ValueError, match="version"):
        store.get("client-14-hmac", version)
    with pytest.raises(ValueError, match="version"):
        store.disable_version("client-14-hmac", version)
    assert fake.vault_requests() == 0


def test_a_127_character_name_is_fine(fake: fake_keyvault.FakeKeyVault) -> None:
    store = open_vault(fake)
    name = "a-" + "b" * 125
    assert store.get(name, store.create_version(name, "v")) == "v"


# --- the cache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class GatedStore:
    """A backend whose reads block until released, counting calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()
        self.error: Exception | None = None
        self.disabled: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def get(self, name: str, version: str) -> str:
        with self._lock:
            self.calls += 1
        assert self.release.wait(10), "the test never released the backend"
        if self.error is not None:
            raise self.error
        return f"{name}@{version}"

    def create_version(self, name: str, value: str) -> str:
        raise AssertionError("not used")

    def disable_version(self, name: str, version: str) -> None:
        self.disabled.append((name, version))


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_cache_serves_a_version_for_ttl_seconds_then_asks_again(fake: fake_keyvault.FakeKeyVault) -> None:
    vault = open_vault(fake).store
    version = vault.create_version("client-20-hmac", "value")
    clock = FakeClock()
    cached = CachedSecretStore(vault, ttl_seconds=60, clock=clock)

    assert cached.get("client-20-hmac", version) == "value"
    clock.now += 59.9
    assert cached.get("client-20-hmac", version) == "value"
    assert gets(fake, "client-20-hmac", version) == 1  # the second read did not reach the vault

    clock.now += 0.1
    assert cached.get("client-20-hmac", version) == "value"
    assert gets(fake, "client-20-hmac", version) == 2


def test_concurrent_misses_of_one_key_make_one_backend_call() -> None:
    backend = GatedStore()
    cached = CachedSecretStore(backend, ttl_seconds=60)
    start = threading.Barrier(8)

    def read() -> str:
        start.wait()
        return cached.get("client-21-hmac", UNKNOWN_VERSION)

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(read) for _ in range(8)]
        wait_until(lambda: backend.calls >= 1)
        time.sleep(0.1)  # the other seven reach the cache while the first read is still in flight
        backend.release.set()
        results = [future.result(timeout=10) for future in futures]

    assert results == [f"client-21-hmac@{UNKNOWN_VERSION}"] * 8
    assert backend.calls == 1


def test_errors_are_shared_with_waiters_but_never_cached() -> None:
    backend = GatedStore()
    backend.error = SecretStoreUnavailable("vault down")
    cached = CachedSecretStore(backend, ttl_seconds=60)

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(cached.get, "client-22-hmac", UNKNOWN_VERSION) for _ in range(4)]
        wait_until(lambda: backend.calls >= 1)
        time.sleep(0.1)
        backend.release.set()
        for future in futures:
            with pytest.raises(SecretStoreUnavailable, match="vault down"):
                future.result(timeout=10)
    assert backend.calls == 1

    backend.error = None
    assert cached.get("client-22-hmac", UNKNOWN_VERSION) == f"client-22-hmac@{UNKNOWN_VERSION}"
    assert backend.calls == 2


def test_a_vault_error_is_not_cached(fake: fake_keyvault.FakeKeyVault) -> None:
    store = open_vault(fake, ttl=300, retry_total=0)
    version = store.create_version("client-23-hmac", "value")
    fake.fail_next(500)

    with pytest.raises(SecretStoreUnavailable):
        store.get("client-23-hmac", version)
    assert store.get("client-23-hmac", version) == "value"
    assert store.get("client-23-hmac", version) == "value"
    assert gets(fake, "client-23-hmac", version) == 2  # the failure, then one successful read kept


def test_a_disable_during_a_read_keeps_that_read_out_of_the_cache() -> None:
    backend = GatedStore()
    cached = CachedSecretStore(backend, ttl_seconds=60)

    with ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = pool.submit(cached.get, "client-24-hmac", UNKNOWN_VERSION)
        wait_until(lambda: backend.calls == 1)
        cached.disable_version("client-24-hmac", UNKNOWN_VERSION)
        backend.release.set()
        in_flight.result(timeout=10)  # the reader that asked first still gets its answer

    cached.get("client-24-hmac", UNKNOWN_VERSION)
    assert backend.disabled == [("client-24-hmac", UNKNOWN_VERSION)]
    assert backend.calls == 2  # the read that raced the disable was not kept


# --- the local file store


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


def test_open_secret_store_local_is_the_file_behind_the_cache(tmp_path: Path) -> None:
    settings = load_settings(local_secrets_path=tmp_path / "s.json", secret_cache_ttl_seconds=42)
    store = open_secret_store(settings)
    assert isinstance(store.store, LocalSecretStore)
    assert store.store.path == tmp_path / "s.json"
    assert store.ttl_seconds == 42
    assert store.get("client-34-hmac", store.create_version("client-34-hmac", "v")) == "v"


def test_peek_answers_only_from_a_fresh_cache_entry(fake: fake_keyvault.FakeKeyVault) -> None:
    vault = open_vault(fake).store
    version = vault.create_version("client-21-hmac", "value")
    clock = FakeClock()
    cached = CachedSecretStore(vault, ttl_seconds=60, clock=clock)

    assert cached.peek("client-21-hmac", version) is None  # a miss never reaches the vault
    assert gets(fake, "client-21-hmac", version) == 0
    assert cached.get("client-21-hmac", version) == "value"
    assert cached.peek("client-21-hmac", version) == "value"
    clock.now += 60
    assert cached.peek("client-21-hmac", version) is None  # expired: the caller must `get` again
    assert gets(fake, "client-21-hmac", version) == 1


# --- reachability (/api/ready)


def test_keyvault_ping_is_one_request_and_a_failure_is_not_retried(fake: fake_keyvault.FakeKeyVault) -> None:
    store = open_vault(fake, retry_total=3)  # the client's own reads keep their retries
    store.ping()  # the vault answers 404 for the probe's version: reachable, and readable by us
    assert sum(fake.requests.values()) == 2  # the unauthenticated challenge, then the probe itself
    fake.fail_next(503)
    with pytest.raises(SecretStoreUnavailable, match="503"):
        store.ping()
    store.ping()


def test_local_ping_accepts_a_missing_file_and_refuses_a_corrupt_one(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    LocalSecretStore(path).ping()
    path.write_text("[]")
    with pytest.raises(SecretStoreUnavailable, match="corrupt"):
        LocalSecretStore(path).ping()
