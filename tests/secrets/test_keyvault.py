"""The Key Vault store through the real SecretClient and ManagedIdentityCredential, against the in-memory
vault of tests/support/fake_keyvault.py: versions, the challenge and token, errors, retries, name rules."""

from __future__ import annotations

import re

import fake_keyvault
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from fake_keyvault import VAULT_URL, gets, open_vault

from shared.secrets import KeyVaultSecretStore, SecretNotFound, SecretStoreUnavailable

VERSION_ID = re.compile(r"[0-9a-f]{32}")
UNKNOWN_VERSION = "0" * 32


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


# --- reachability (/api/ready)


def test_keyvault_ping_is_one_request_and_a_failure_is_not_retried(fake: fake_keyvault.FakeKeyVault) -> None:
    store = open_vault(fake, retry_total=3)  # the client's own reads keep their retries
    store.ping()  # the vault answers 404 for the probe's version: reachable, and readable by us
    assert sum(fake.requests.values()) == 2  # the unauthenticated challenge, then the probe itself
    fake.fail_next(503)
    with pytest.raises(SecretStoreUnavailable, match="503"):
        store.ping()
    store.ping()
