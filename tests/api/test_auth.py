"""Signed requests: what passes, and every tampering, replay, expiry, revocation and scope that must not."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import fake_keyvault
import httpx
import psycopg
import pytest

from caratflow_client import CaratflowClient
from caratflow_client.signing import sign_request
from shared.access import keys
from shared.secrets import open_secret_store

PATH = "/api/v1/diamonds"


def signed(key, *, method="GET", path=PATH, query="limit=1", body=b"", **overrides) -> dict[str, str]:
    signature = sign_request(
        key_id=key.key_id, secret=key.secret, method=method, path=path, query=query, body=body, **overrides
    )
    return {"Authorization": signature.header()}


def send(raw: httpx.Client, headers, *, method="GET", path=PATH, query="limit=1", body=b"") -> httpx.Response:
    return raw.request(method, f"{path}?{query}" if query else path, headers=headers, content=body)


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["detail"] == "The request is not signed with an active key."


def test_a_signed_request_passes_and_unsigned_ones_do_not(raw, search_key) -> None:
    assert send(raw, signed(search_key)).status_code == 200
    assert_401(send(raw, {}))
    assert_401(send(raw, {"Authorization": "Bearer something"}))


@pytest.mark.parametrize(
    ("signed_as", "sent_as"),
    [
        ({"body": b'{"a":1}'}, {"body": b'{"a":2}'}),  # body
        ({"path": "/api/v1/diamonds/x"}, {}),  # path
        ({"query": "limit=1"}, {"query": "limit=2"}),  # query
        ({"query": "shape=ROUND&limit=1"}, {"query": "limit=1"}),  # a parameter dropped
        ({"method": "POST"}, {}),  # method
    ],
    ids=["body", "path", "query", "dropped-parameter", "method"],
)
def test_tampering_is_rejected(raw, search_key, signed_as, sent_as) -> None:
    assert_401(send(raw, signed(search_key, **signed_as), **sent_as))


def test_query_order_and_escaping_do_not_matter(raw, search_key) -> None:
    headers = signed(search_key, query="shape=ROUND&limit=1&cut=VERY%20GOOD")
    assert send(raw, headers, query="cut=VERY+GOOD&limit=1&shape=ROUND").status_code == 200


def test_timestamp_is_checked_both_ways_and_cannot_be_edited(raw, search_key, api) -> None:
    tolerance = api.settings.api_signature_tolerance_seconds
    now = int(time.time())
    assert_401(send(raw, signed(search_key, timestamp=now - tolerance - 5)))
    assert_401(send(raw, signed(search_key, timestamp=now + tolerance + 5)))
    assert send(raw, signed(search_key, timestamp=now - tolerance + 30)).status_code == 200
    header = signed(search_key)["Authorization"]
    stamped = int(re.search(r"timestamp=(\d+)", header).group(1))  # the clock may have ticked since `now`
    edited = header.replace(f"timestamp={stamped}", f"timestamp={stamped + 1}")
    assert edited != header
    assert_401(send(raw, {"Authorization": edited}))


def test_a_replayed_nonce_is_rejected_inside_the_window(raw, search_key) -> None:
    headers = signed(search_key)
    assert send(raw, headers).status_code == 200
    assert_401(send(raw, headers))


def test_expired_and_revoked_keys_and_clients(raw, issue_key, pool, secret_store, api) -> None:
    api.app.state.api.keys.ttl = 0  # see revocations at once (the default bound is api_key_cache_seconds)
    expired = issue_key("old-partner", ["search"], expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert_401(send(raw, signed(expired)))
    live = issue_key("partner", ["search"])
    assert send(raw, signed(live)).status_code == 200
    keys.revoke_key(pool, secret_store, live.key_id)
    assert_401(send(raw, signed(live)))
    other = issue_key("partner", ["search"])
    assert send(raw, signed(other)).status_code == 200
    keys.revoke_client(pool, secret_store, "partner")
    assert_401(send(raw, signed(other)))


def test_wrong_scope_is_403(raw, issue_key) -> None:
    admin_only = issue_key("ops", ["admin"])
    response = send(raw, signed(admin_only))
    assert response.status_code == 403
    assert response.json()["type"] == "urn:caratflow:problem:forbidden"


def test_rotation_keeps_old_and_new_secrets_valid_during_the_overlap(
    raw, search_key, pool, secret_store, database_url, api
) -> None:
    api.app.state.api.keys.ttl = 0
    rotated = keys.rotate_key(pool, secret_store, search_key.key_id, timedelta(hours=1))
    assert rotated.key_id == search_key.key_id
    assert rotated.secret != search_key.secret
    assert send(raw, signed(search_key)).status_code == 200
    assert send(raw, signed(rotated)).status_code == 200
    with psycopg.connect(database_url) as conn:  # the overlap ends
        conn.execute(
            "UPDATE api_key_secrets SET expires_at = now() - interval '1 second' WHERE secret_version = %s",
            (search_key.version,),
        )
    assert_401(send(raw, signed(search_key)))
    assert send(raw, signed(rotated)).status_code == 200


def test_keys_are_stored_only_as_hashes(search_key, database_url) -> None:
    import hashlib

    with psycopg.connect(database_url) as conn:
        dump = " ".join(
            conn.execute(f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} t").fetchone()[0]  # noqa: S608
            for table in ("api_clients", "api_keys", "api_key_secrets")
        )
    assert search_key.key_id in dump
    assert search_key.secret not in dump
    assert hashlib.sha256(search_key.secret.encode()).hexdigest() in dump


def test_failed_attempts_are_limited_per_ip(raw, search_key, api, database_url) -> None:
    api.app.state.api.settings = api.settings.model_copy(update={"api_auth_failure_burst": 3})
    statuses = [send(raw, signed(search_key, timestamp=1)).status_code for _ in range(5)]
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]
    # blocked: a correct signature now gets the same 429, so guessing right teaches nothing
    blocked = send(raw, signed(search_key))
    assert blocked.status_code == 429
    assert blocked.json()["type"] == "urn:caratflow:problem:too-many-failures"
    # Operators are told once per blocked caller (per hour), not once per refused request.
    with psycopg.connect(database_url) as conn:
        events = conn.execute(
            "SELECT subject, details->>'key_id' FROM notification_events WHERE event_kind = 'auth_blocked'"
        ).fetchall()
    assert sorted(events) == [("ip:127.0.0.1", search_key.key_id), (f"key:{search_key.key_id}", search_key.key_id)]


def test_secrets_from_key_vault(api_settings, database_url, pool, monkeypatch) -> None:
    """The real SecretClient and ManagedIdentityCredential, answered by a transport that acts as Key Vault."""
    from ports import free_port
    from served import serve

    from api.app import create_app

    vault = fake_keyvault.install(monkeypatch)
    settings = api_settings.model_copy(
        update={"secret_store": "keyvault", "key_vault_url": "https://caratflow-test.vault.azure.net/"}
    )
    store = open_secret_store(settings, transport=vault, retry_total=0)
    issued = keys.create_key(pool, store, "vault-client", ["search"])
    port = free_port()
    server, thread = serve(create_app(settings, secrets=store, url=database_url), port)
    try:
        with CaratflowClient(f"http://127.0.0.1:{port}", issued.key_id, issued.secret) as client:
            assert client.search(limit=1)["page"]["limit"] == 1
        assert vault.vault_requests("GET") >= 1
        assert vault.versions("https://caratflow-test.vault.azure.net", issued_name(issued))[issued.version] is True
    finally:
        server.should_exit = True
        thread.join(10)


def issued_name(issued) -> str:
    return f"caratflow-api-{issued.key_id}"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("198.51.100.1, 203.0.113.7:52311", "203.0.113.7"),  # the caller's own entry is ignored
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::2", "2001:db8::2"),
        ("1.2.3.4, not-an-address", None),
        ("", None),
    ],
)
def test_forwarded_ip_is_the_last_hop_without_its_port(header, expected) -> None:
    from api.auth import forwarded_ip

    assert forwarded_ip(header) == expected
