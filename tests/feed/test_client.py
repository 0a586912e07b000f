"""The Nivoda client against the real emulator over HTTP, with the real request budget in PostgreSQL."""

from __future__ import annotations

import multiprocessing
import time

import httpx
import pytest
from stamps import stamped_calls

from emulator.config import FaultSettings
from emulator.server import RunningEmulator
from shared.config import Settings, load_settings
from shared.feed import errors
from shared.feed.budget import PostgresRequestBudget
from shared.feed.nivoda.client import NivodaClient
from shared.feed.nivoda.source import NivodaSource
from shared.feed.nivoda.tokens import TokenCache
from shared.feed.source import PriceBand

SIZE = 3000


@pytest.fixture(scope="module")
def feed():
    with RunningEmulator(size=SIZE, seed=11, short_page_rate=0.0) as running:
        yield running


@pytest.fixture(autouse=True)
def calm(feed: RunningEmulator):
    """Every test starts with faults off and the default quirks."""
    feed.faults.replace(FaultSettings(short_page_rate=0.0))
    yield
    feed.faults.replace(FaultSettings(short_page_rate=0.0))


def requests_of(feed: RunningEmulator, kind: str) -> int:
    return sum(feed.stats.snapshot()["requests"].get(kind, {}).values())


def all_requests(feed: RunningEmulator) -> int:
    return sum(sum(outcomes.values()) for outcomes in feed.stats.snapshot()["requests"].values())


class RecordingClient(NivodaClient):
    """A client whose backoff waits `make_client` records in `delays`."""

    delays: list[float]


def make_client(settings: Settings, pool, feed: RunningEmulator, **overrides) -> RecordingClient:
    budget = PostgresRequestBudget(pool, "nivoda", overrides.pop("rate", 1000))
    delays: list[float] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        time.sleep(seconds)

    options = {
        "endpoint": feed.url,
        "username": feed.config.username,
        "password": feed.config.password.get_secret_value(),
        "budget": budget,
        "timeout": 5.0,
        "max_attempts": 6,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
        "tokens": TokenCache(),
        "sleep": sleep,
        **overrides,
    }
    client = RecordingClient(**options)
    client.delays = delays
    return client


def truth(feed: RunningEmulator, labgrown: bool | None) -> int:
    params = {} if labgrown is None else {"labgrown": str(labgrown).lower()}
    count: int = httpx.get(f"{feed.base_url}/_emulator/truth", params=params).json()["count"]
    return count


@pytest.mark.parametrize("mode", ["header", "wrapper"])
def test_count_and_page_in_both_token_modes(settings, pool, feed, mode: str) -> None:
    client = make_client(settings, pool, feed, token_mode=mode)
    assert client.count({"labgrown": False}) == truth(feed, False)
    page = client.page({"labgrown": True}, offset=0, limit=50)
    assert page.received == 50
    assert not page.rejects
    assert len({item.stone_id for item in page.items}) == 50
    assert all(len(item.payload_hash) == 32 for item in page.items)


def walk(source: NivodaSource, band: PriceBand, limit: int = 50) -> tuple[list[str], int]:
    """Page a band to its end: advance by what arrived, stop only at an empty page."""
    offset, ids, pages = 0, list[str](), 0
    while True:
        page = source.page(band, offset, limit)
        pages += 1
        if page.is_end:
            return ids, pages
        ids += [item.stone_id for item in page.items]
        offset += page.received


def test_paging_returns_each_stone_once_despite_short_pages(settings, pool, feed) -> None:
    feed.faults.replace(FaultSettings(short_page_rate=0.3))
    source = NivodaSource(make_client(settings, pool, feed), "nivoda-natural", {"labgrown": False})
    bands = [PriceBand(0, 2000), PriceBand(2000, 6000), PriceBand(6000, None)]
    seen = []
    for band in bands:
        ids, _ = walk(source, band, limit=40)
        assert len(ids) == source.count(band)
        seen += ids
    assert len(seen) == len(set(seen)) == truth(feed, False)
    assert feed.stats.snapshot()["short_pages"] > 0


def test_malformed_items_are_rejected_with_reasons_and_the_page_goes_on(settings, pool, feed) -> None:
    feed.faults.replace(FaultSettings(short_page_rate=0.0, malformed_item_rate=0.05))
    served = httpx.get(f"{feed.base_url}/_emulator/malformed").json()["stones"]
    # An unknown shape is well-formed at the feed boundary: the raw row keeps it, and mapping to the
    # catalogue rejects it later (a vocabulary we extend must not need a refetch).
    broken = {s["id"] for s in served if s["kind"] != "unknown_shape"}
    unknown_shape = {s["id"] for s in served if s["kind"] == "unknown_shape"}
    source = NivodaSource(make_client(settings, pool, feed), "everything", {})  # both feeds: all stones
    offset, valid, rejects = 0, [], []
    while True:
        page = source.page(PriceBand(0, None), offset, 50)
        if page.is_end:
            break
        valid += page.items
        rejects += page.rejects
        offset += page.received
    assert rejects, "5% malformed stones must produce rejects"
    assert all(r.reason for r in rejects)
    assert len(valid) + len(rejects) == truth(feed, None)
    assert not {item.stone_id for item in valid} & broken
    assert unknown_shape <= {item.stone_id for item in valid}
    assert len(rejects) == len(broken)
    assert {r.stone_id for r in rejects if r.stone_id} <= broken


@pytest.mark.parametrize(
    "fault",
    [
        {"rate_5xx": 0.3},
        {"rate_429": 0.3, "retry_after_seconds": 0},
        {"rate_timeout": 0.3, "timeout_hang_seconds": 1.0},
        {"rate_malformed_json": 0.3},
        {"rate_graphql_error": 0.3},
        {"latency_ms": 20, "latency_jitter_ms": 20},
    ],
)
def test_client_survives_each_fault(settings, pool, feed, fault: dict[str, float]) -> None:
    feed.faults.replace(FaultSettings(short_page_rate=0.0, **fault))
    client = make_client(settings, pool, feed, timeout=0.5, max_attempts=10)
    expected = truth(feed, False)
    # 30 calls at a 30% fault rate: the chance that no fault is drawn at all is below 1e-4.
    for _ in range(30):
        assert client.count({"labgrown": False}) == expected
    if "latency_ms" not in fault:
        assert client.delays, "faults were injected and retried after a backoff"


def test_retry_after_is_honoured(settings, pool, feed) -> None:
    feed.faults.replace(FaultSettings(short_page_rate=0.0, rate_429=0.5, retry_after_seconds=1))
    client = make_client(settings, pool, feed)
    for _ in range(4):
        client.count({"labgrown": True})
    waited_for_429 = [d for d in client.delays if d >= 1.0]
    assert waited_for_429, "at least one 429 was answered by waiting Retry-After"
    assert all(d < 1.2 for d in waited_for_429)


# Expired tokens: one refusal gets one fresh login (below); a refusal of the fresh token is final.
def test_expired_token_gets_one_fresh_login(settings, pool, feed) -> None:
    client = make_client(settings, pool, feed)
    client.count({"labgrown": False})
    logins = requests_of(feed, "auth")
    httpx.post(f"{feed.base_url}/_emulator/tokens/expire")
    client.count({"labgrown": False})
    assert requests_of(feed, "auth") == logins + 1


def test_persistent_auth_refusal_is_final(settings, pool, feed) -> None:
    feed.faults.replace(FaultSettings(short_page_rate=0.0, rate_expired_token=1.0))
    client = make_client(settings, pool, feed)
    with pytest.raises(errors.FeedAuthError):
        client.count({"labgrown": False})


def test_bad_credentials_fail_at_once(settings, pool, feed) -> None:
    client = make_client(settings, pool, feed, password="wrong")
    before = requests_of(feed, "auth")
    with pytest.raises(errors.FeedAuthError, match="credentials"):
        client.count({"labgrown": False})
    assert requests_of(feed, "auth") == before + 1  # never retried


def test_query_errors_are_not_retried(settings, pool, feed) -> None:
    client = make_client(settings, pool, feed)
    client.count({"labgrown": False})  # log in first
    before = all_requests(feed)
    with pytest.raises(errors.FeedQueryError):
        client.count({"no_such_filter": 1})
    assert all_requests(feed) == before + 1
    assert client.delays == []


def test_http_4xx_is_not_retried(settings, pool, feed) -> None:
    client = make_client(settings, pool, feed, endpoint=f"{feed.base_url}/api/nowhere")
    with pytest.raises(errors.FeedQueryError, match="404"):
        client.count({"labgrown": False})
    assert client.delays == []


def test_transient_errors_give_up_with_a_typed_error(settings, pool, feed) -> None:
    feed.faults.replace(FaultSettings(short_page_rate=0.0, rate_5xx=1.0))
    client = make_client(settings, pool, feed, max_attempts=3)
    client_login = client.count  # the login is not faulted (faults_on_auth is off)
    with pytest.raises(errors.FeedRetriesExhausted) as raised:
        client_login({"labgrown": False})
    assert raised.value.attempts == 3
    assert isinstance(raised.value.__cause__, errors.FeedServerError)


def test_unreachable_feed_is_a_network_error(settings, pool) -> None:
    client = NivodaClient(
        endpoint="http://127.0.0.1:9/api/diamonds",
        username="u",
        password="p",
        budget=PostgresRequestBudget(pool, "nivoda", 1000),
        max_attempts=2,
        backoff_base=0.01,
        backoff_max=0.01,
        tokens=TokenCache(),
    )
    with pytest.raises(errors.FeedRetriesExhausted) as raised:
        client.count({})
    assert isinstance(raised.value.__cause__, errors.FeedNetworkError)


def test_limit_over_50_is_refused_before_sending(settings, pool, feed) -> None:
    with pytest.raises(ValueError, match="limit"):
        make_client(settings, pool, feed).page({}, 0, 51)


# --- the request budget with real clients: several threads in two processes


def _fetch_counts(database_url: str, url: str, username: str, password: str, threads: int, calls: int, out) -> None:
    from psycopg_pool import ConnectionPool

    with ConnectionPool(database_url, min_size=1, max_size=threads) as pool:
        client = NivodaClient(
            endpoint=url,
            username=username,
            password=password,
            budget=PostgresRequestBudget(pool, "nivoda", 20),
            tokens=TokenCache(),
        )
        stamps = stamped_calls(lambda: client.count({"labgrown": False}), threads, calls)
    out.put(stamps)


def test_budget_holds_for_concurrent_clients_in_two_processes(database_url: str, feed) -> None:
    load_settings(database_url=database_url)  # the same database the budget row lives in
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    before = requests_of(feed, "data") + requests_of(feed, "auth")
    args = (database_url, feed.url, feed.config.username, feed.config.password.get_secret_value(), 3, 10, out)
    workers = [context.Process(target=_fetch_counts, args=args) for _ in range(2)]
    started = time.time()
    for worker in workers:
        worker.start()
    stamps = sorted(s for _ in workers for s in out.get(timeout=120))
    for worker in workers:
        worker.join(10)
    sent = requests_of(feed, "data") + requests_of(feed, "auth") - before
    assert len(stamps) == 60
    assert sent == 62  # 60 counts + one login per process, every one of them spent from the budget
    span = stamps[-1] - stamps[0]
    assert (len(stamps) - 1) / span <= 20 * 1.02, f"{(len(stamps) - 1) / span:.1f} req/s over a budget of 20"
    assert stamps[-1] - started >= 61 / 20 * 0.9  # and the budget was used, not just respected
