"""The TTL cache in front of any secret store: expiry, one backend call per concurrent miss, errors never
kept, a disable racing a read, and `peek`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import fake_keyvault
import pytest
from fake_keyvault import gets, open_vault

from shared.secrets import CachedSecretStore, SecretStoreUnavailable

UNKNOWN_VERSION = "0" * 32


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

    def ping(self) -> None:  # the rest of the SecretStore protocol
        raise AssertionError("not used")


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
