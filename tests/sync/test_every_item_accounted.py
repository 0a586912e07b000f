"""Issue 11's done-when, in one run: the emulator serves every hostile kind at once (poison characters,
over-long text in each mapped field, blank and stolen ids, absurd prices and carats, wrong types,
unknown grades) and the run still succeeds, with every item the feed served accounted for exactly
once: catalogued with the feed's values, a reject with its reason and position, or a duplicate
naming the item that won."""

from __future__ import annotations

from decimal import Decimal

import httpx
import psycopg

from emulator.config import FaultSettings
from emulator.hostile import DUPLICATE_ACROSS, DUPLICATE_IN_PAGE, KINDS
from shared.db.rows import one

FEED = "nivoda-natural"


def test_every_item_is_catalogued_rejected_or_a_recorded_duplicate(feed, run_sync, database_url: str) -> None:
    feed.faults.replace(FaultSettings(hostile_item_rate=0.2))
    hostile = httpx.get(f"{feed.base_url}/_emulator/hostile").json()["stones"]
    assert {s["kind"] for s in hostile} == set(KINDS)  # every kind is served, most several times
    summary = run_sync(FEED)
    assert summary["status"] == "succeeded", summary
    served = httpx.get(f"{feed.base_url}/_emulator/truth", params={"labgrown": "false"}).json()["count"]
    run = summary["run_id"]
    with psycopg.connect(database_url) as conn:
        at_boundary = conn.execute(
            "SELECT partition_no, page_offset, item_index, reason FROM feed_rejects WHERE run_id = %s", (run,)
        ).fetchall()
        boundary_reasons: dict[str, str] = dict(
            conn.execute("SELECT stone_id, reason FROM feed_rejects WHERE run_id = %s AND stone_id IS NOT NULL", (run,))
        )
        duplicates = conn.execute(
            """SELECT d.stone_id, r.seen_partition_no, r.seen_page_offset, r.seen_item_index,
                      d.winner_partition_no, d.winner_page_offset, d.winner_item_index
               FROM feed_duplicates d JOIN raw_stones r USING (feed, stone_id) WHERE d.run_id = %s""",
            (run,),
        ).fetchall()
        raw = conn.execute(
            """SELECT r.stone_id, d.stone_id IS NOT NULL AND d.delisted_at IS NULL AS catalogued,
                      m.reason, d.carats, d.cost_cents, r.payload
               FROM raw_stones r
               LEFT JOIN diamonds d ON d.feed = r.feed AND d.stone_id = r.stone_id
               LEFT JOIN mapping_rejects m ON m.feed = r.feed AND m.stone_id = r.stone_id
               WHERE r.feed = %s AND r.last_seen_run_id = %s""",
            (FEED, run),
        ).fetchall()
        (listed_elsewhere,) = one(
            conn.execute(
                "SELECT count(*) FROM diamonds WHERE feed = %s AND delisted_at IS NULL AND last_seen_run_id <> %s",
                (FEED, run),
            ).fetchone()
        )

    # Every item served is exactly one of: a raw row of this run, a reject at the boundary, a duplicate.
    assert len(raw) + len(at_boundary) + len(duplicates) == served
    assert len({(p, o, i) for p, o, i, _ in at_boundary}) == len(at_boundary)
    assert all(reason for *_, reason in at_boundary)
    # A duplicate names the item its stone's raw row holds.
    for stone_id, *positions in duplicates:
        assert positions[:3] == positions[3:], stone_id
    # Each raw row is either catalogued with the feed's values or a mapping reject with its reason.
    catalogued = 0
    for stone_id, listed, reason, carats, cost_cents, payload in raw:
        assert listed != bool(reason), (stone_id, listed, reason)
        if listed:
            catalogued += 1
            certificate = payload["diamond"]["certificate"]
            assert cost_cents == int(payload["price"]), stone_id
            assert carats == Decimal(str(certificate["carats"])).quantize(Decimal("0.01")), stone_id
    assert catalogued > served // 2
    assert listed_elsewhere == 0  # nothing is listed that this run did not see
    # No stone the feed turned hostile is for sale (a stolen id's winner is an ordinary offer).
    stolen = {DUPLICATE_IN_PAGE, DUPLICATE_ACROSS}
    bad_ids = {s["id"] for s in hostile if s["kind"] not in stolen}
    sold = {stone_id for stone_id, listed, *_ in raw if listed}
    assert not sold & bad_ids, sorted({s["kind"] for s in hostile if s["id"] in sold & bad_ids})
    # The reasons name what was wrong: wrong JSON types (at the boundary) and unreadable price-deciding
    # grades (in the mapping) included.
    reasons = {**boundary_reasons, **{stone_id: reason for stone_id, _, reason, *_ in raw if reason}}
    expected = {
        "object_girdle": "diamond.certificate.girdle: Input should be a valid string",
        "list_fancy_color": "diamond.certificate.f_color: Input should be a valid string",
        "text_labgrown": "diamond.certificate.labgrown: Input should be a valid boolean",
        "unknown_color": "unknown color",
        "unknown_clarity": "unknown clarity",
        "unknown_lab": "unknown lab",
    }
    checked = 0
    for stone in hostile:
        if stone["kind"] in expected and stone["id"] in reasons:
            assert reasons[stone["id"]].startswith(expected[stone["kind"]]), (stone["kind"], reasons[stone["id"]])
            checked += 1
    assert checked >= len(expected)
