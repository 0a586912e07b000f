"""The feeds caratflow syncs. Adding a supplier means adding a FeedSpec here, not changing the pipeline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from psycopg_pool import ConnectionPool
from pydantic import AfterValidator, StringConstraints

from shared.config import Settings
from shared.feed.budget import PostgresRequestBudget
from shared.feed.nivoda.client import NivodaClient
from shared.feed.nivoda.source import NivodaSource
from shared.feed.source import FeedSource


@dataclass(frozen=True)
class ScanParams:
    """How the density scan walks a feed's price-per-carat axis (whole dollars)."""

    dense_max_dpc: int  # fixed steps below this
    dense_step: int
    band_target: int = 500  # adaptive steps aim at this many stones per band
    growth: int = 5  # adaptive steps grow at most this much per band (and this much through empty ranges)
    recount_factor: float = 1.5  # bands over band_target x this are split and counted again
    tail_end_dpc: int = 1_000_000  # beyond this everything falls into one open-ended band

    def __post_init__(self) -> None:
        if not (0 < self.dense_step <= self.dense_max_dpc < self.tail_end_dpc):
            raise ValueError("need 0 < dense_step <= dense_max_dpc < tail_end_dpc")
        if self.band_target < 1 or self.growth < 2 or self.recount_factor < 1:
            raise ValueError("need band_target >= 1, growth >= 2, recount_factor >= 1")


@dataclass(frozen=True)
class FeedSpec:
    name: str
    supplier: str  # one request budget per supplier: its feeds share one API
    lab_grown: bool  # what a stone of this feed is when its payload does not say
    scan: ScanParams
    open_source: Callable[[Settings, ConnectionPool], FeedSource]


def _nivoda(feed: str, labgrown: bool) -> Callable[[Settings, ConnectionPool], FeedSource]:
    def open_source(settings: Settings, pool: ConnectionPool) -> FeedSource:
        budget = PostgresRequestBudget(pool, "nivoda", settings.feed_rate_limit_per_second)
        return NivodaSource(NivodaClient.from_settings(settings, budget), feed, {"labgrown": labgrown})

    return open_source


# Nivoda's natural stones are dense below $5,000/ct; most of its lab-grown ones (~770k of ~900k in a
# production density scan) are below $250/ct, hence the finer fixed steps for lab-grown.
FEEDS: dict[str, FeedSpec] = {
    spec.name: spec
    for spec in (
        FeedSpec(
            "nivoda-natural",
            "nivoda",
            lab_grown=False,
            scan=ScanParams(dense_max_dpc=5000, dense_step=50),
            open_source=_nivoda("nivoda-natural", False),
        ),
        FeedSpec(
            "nivoda-labgrown",
            "nivoda",
            lab_grown=True,
            scan=ScanParams(dense_max_dpc=1000, dense_step=10),
            open_source=_nivoda("nivoda-labgrown", True),
        ),
    )
}


class UnknownFeed(KeyError):
    pass


def _known_feed(name: str) -> str:
    if name not in FEEDS:
        raise ValueError(f"unknown feed {name!r}; known: {', '.join(sorted(FEEDS))}")
    return name


# A feed name as operators give it. Checked against the registry rather than declared as an enum, so
# the public API document does not list the feeds: their names are the suppliers' (docs/security.md).
FeedName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$"), AfterValidator(_known_feed)]


def get_feed(name: str) -> FeedSpec:
    try:
        return FEEDS[name]
    except KeyError:
        raise UnknownFeed(f"unknown feed {name!r}; known: {', '.join(sorted(FEEDS))}") from None
