"""Token cache: shared by threads, refreshed early, JWT expiry honoured."""

from __future__ import annotations

import base64
import json
import threading
import time

from shared.feed.nivoda.tokens import TokenCache, jwt_expiry

KEY = ("https://feed/api", "user")


def _jwt(exp: float) -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256'})}.{part({'exp': exp, 'sub': 'x'})}.c2lnbmF0dXJl"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_token_is_reused_then_refreshed_a_margin_early() -> None:
    clock = Clock()
    cache = TokenCache(clock)
    logins: list[str] = []

    def login() -> str:
        logins.append(f"t{len(logins)}")
        return logins[-1]

    assert cache.get(KEY, login, ttl=3600, margin=300) == "t0"
    clock.now += 3299
    assert cache.get(KEY, login, ttl=3600, margin=300) == "t0"
    clock.now += 1  # 300 s before expiry: refresh now, not after a failed request
    assert cache.get(KEY, login, ttl=3600, margin=300) == "t1"
    assert logins == ["t0", "t1"]


def test_jwt_exp_beats_the_configured_ttl() -> None:
    clock = Clock()
    cache = TokenCache(clock)
    token = _jwt(clock.now + 600)
    assert jwt_expiry(token) == clock.now + 600
    tokens = iter([token, "fresh"])
    assert cache.get(KEY, lambda: next(tokens), ttl=86_400, margin=60) == token
    clock.now += 541
    assert cache.get(KEY, lambda: next(tokens), ttl=86_400, margin=60) == "fresh"


def test_opaque_tokens_have_no_jwt_expiry() -> None:
    assert jwt_expiry("opaque-token") is None
    assert jwt_expiry("a.b.c") is None  # three parts, not base64 JSON


def test_invalidate_only_forgets_the_named_token() -> None:
    cache = TokenCache(Clock())
    tokens = iter(["a", "b"])
    assert cache.get(KEY, lambda: next(tokens), ttl=60, margin=0) == "a"
    cache.invalidate(KEY, "stale-from-another-thread")
    assert cache.get(KEY, lambda: next(tokens), ttl=60, margin=0) == "a"
    cache.invalidate(KEY, "a")
    assert cache.get(KEY, lambda: next(tokens), ttl=60, margin=0) == "b"


def test_concurrent_threads_log_in_once() -> None:
    cache = TokenCache()
    calls = []

    def slow_login() -> str:
        calls.append(1)
        time.sleep(0.05)
        return "shared"

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get(KEY, slow_login, ttl=60, margin=0))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["shared"] * 8
    assert len(calls) == 1
