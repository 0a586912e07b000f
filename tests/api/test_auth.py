"""Signed requests: what passes, and every tampering, replay, expiry, revocation and scope that must not."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import fake_keyvault
import httpx
import psycopg
import pytest

from caratflow_client import CaratflowClient
from caratflow_client.signing import sign_request
from shared.access import keys
from shared.access.keys import IssuedSecret
from shared.db.rows import one

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
    found = re.search(r"timestamp=(\d+)", header)
    assert found is not None
    stamped = int(found.group(1))  # the clock may have ticked since `now`
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
            one(conn.execute(f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} t").fetchone())[0]  # noqa: S608
            for table in ("api_clients", "api_keys", "api_key_secrets")
        )
    assert search_key.key_id in dump
    assert search_key.secret not in dump
    assert hashlib.sha256(search_key.secret.encode()).hexdigest() in dump


def wrong(key: IssuedSecret) -> dict[str, str]:
    """A header with `key`'s id and a signature under another secret: what anyone who saw the id can send."""
    return {
        "Authorization": sign_request(
            key_id=key.key_id, secret="not-" + key.secret, method="GET", path=PATH, query="limit=1"
        ).header()
    }


def from_address(headers: dict[str, str], address: str) -> dict[str, str]:
    return {**headers, "X-Forwarded-For": address}


def test_failures_are_limited_per_address_and_never_lock_out_a_correct_signature(
    raw, search_key, api, database_url
) -> None:
    # One failure a second refills the budget: the attacker in the finding kept it spent at that pace.
    api.app.state.api.settings = api.settings.model_copy(
        update={"api_auth_failure_burst": 3, "api_auth_failures_per_minute": 60, "api_trust_forwarded_for": True}
    )
    attacker, victim = "203.0.113.7", "198.51.100.9"
    statuses = [send(raw, from_address(wrong(search_key), attacker)).status_code for _ in range(25)]
    assert statuses[:3] == [401, 401, 401]
    assert set(statuses[3:]) == {429}
    # The key's owner, elsewhere, is not refused; nor is a correct signature from the failing address.
    assert send(raw, from_address(signed(search_key), victim)).status_code == 200
    assert send(raw, from_address(signed(search_key), attacker)).status_code == 200
    refused = send(raw, from_address(wrong(search_key), attacker))
    assert refused.status_code == 429
    assert refused.json()["type"] == "urn:caratflow:problem:too-many-failures"
    # Retry-After is the real wait: one interval (1 s) here, not a fixed minute...
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 2
    # ...and after it, a failure is answered as a failure again (401), not still blocked.
    time.sleep(wait + 0.1)
    assert_401(send(raw, from_address(wrong(search_key), attacker)))
    # A failing victim address is counted on its own.
    assert_401(send(raw, from_address(wrong(search_key), victim)))
    # Operators hear of the refused address and of the key under attack, once each (per hour).
    with psycopg.connect(database_url) as conn:
        events = conn.execute(
            """SELECT subject, details->>'key_id', details->>'enforced' FROM notification_events
               WHERE event_kind = 'auth_blocked' ORDER BY subject"""
        ).fetchall()
    assert events == [
        (f"ip:{attacker}", search_key.key_id, "true"),
        (f"key:{search_key.key_id}", search_key.key_id, "false"),
    ]


def test_a_repeated_authorization_or_content_type_header_is_refused(raw, search_key) -> None:
    one, other = signed(search_key)["Authorization"], signed(search_key)["Authorization"]
    for headers in (
        [("Authorization", one), ("Authorization", other)],
        [("Authorization", one), ("Authorization", one)],
    ):
        response = raw.get(f"{PATH}?limit=1", headers=headers)
        assert response.status_code == 400, response.text
        assert response.json()["type"] == "urn:caratflow:problem:repeated-header"
    response = raw.get(
        f"{PATH}?limit=1", headers=[("Authorization", one), ("Content-Type", "a/b"), ("Content-Type", "c/d")]
    )
    assert response.status_code == 400
    # the single-header request with the same signature is still unused, so it passes
    assert send(raw, {"Authorization": one}).status_code == 200


def test_a_key_without_the_scope_spends_no_budget_and_stores_no_nonce(raw, search_key, database_url) -> None:
    body = b'{"feed": "nivoda-natural"}'
    headers = {
        **signed(search_key, method="POST", path="/api/v1/runs", query="", body=body, content_type="application/json"),
        "Content-Type": "application/json",
    }
    response = send(raw, headers, method="POST", path="/api/v1/runs", query="", body=body)
    assert response.status_code == 403
    with psycopg.connect(database_url) as conn:
        budgets = [row[0] for row in conn.execute("SELECT budget FROM rate_budgets").fetchall()]
        (nonces,) = one(conn.execute("SELECT count(*) FROM api_nonces").fetchone())
    assert not [name for name in budgets if name.startswith("api:mutation:")]
    assert nonces == 0


def test_refused_requests_write_a_bounded_number_of_rows(raw, search_key, api, database_url) -> None:
    api.app.state.api.settings = api.settings.model_copy(
        update={"api_search_burst": 5, "api_search_rate_per_minute": 1}
    )

    def counts() -> tuple[int, int]:
        with psycopg.connect(database_url) as conn:
            (budgets,) = one(conn.execute("SELECT count(*) FROM rate_budgets").fetchone())
            (nonces,) = one(conn.execute("SELECT count(*) FROM api_nonces").fetchone())
            return budgets, nonces

    before = counts()
    statuses: Counter[int] = Counter()
    for n in range(1000):  # a fresh, well-formed, unknown key id each time
        forged = sign_request(key_id=f"ck{n:016x}", secret="guess", method="GET", path=PATH, query="limit=1")
        statuses[send(raw, {"Authorization": forged.header()}).status_code] += 1
    for _ in range(1000):  # correctly signed, far over the search budget
        statuses[send(raw, signed(search_key)).status_code] += 1
    budgets, nonces = (after - was for after, was in zip(counts(), before, strict=True))
    assert statuses[200] == 5  # the burst; everything else refused
    assert statuses[401] + statuses[429] == 1995
    assert budgets <= 2  # this address's failure budget and the client's search budget
    assert nonces == 5  # only admitted requests keep their nonce


def test_secrets_from_key_vault(api_settings, database_url, pool, monkeypatch) -> None:
    """The real SecretClient and ManagedIdentityCredential, answered by a transport that acts as Key Vault."""
    from ports import free_port
    from served import serve

    from api.app import create_app

    vault = fake_keyvault.install(monkeypatch)
    settings = api_settings.model_copy(
        update={"secret_store": "keyvault", "key_vault_url": "https://caratflow-test.vault.azure.net/"}
    )
    store = fake_keyvault.open_store(settings, vault, retry_total=0)
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
