"""The page statement's two forms (walk the sort index; filter first, then sort) give the same pages.

At test scale every filtered search is small enough to filter first, so the HTTP tests mostly see
that form; here each form is forced and walked with cursors against the order computed in Python.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import dict_row
from search_cases import FILTERS, SORTS, ids, listed

from shared.access import server_keys
from shared.catalogue import cursor as cursors
from shared.catalogue import search
from shared.catalogue.query import DiamondSearch

WALK, FILTER_FIRST = None, 0  # expected_rows: unknown (planner alone) / tiny (always filter first)


def walk(conn: psycopg.Connection, query: DiamondSearch, expected_rows: int | None) -> list[str]:
    found, after = [], None
    while True:
        statement, params = search.page(query, 37, after, expected_rows)
        rows = conn.cursor(row_factory=dict_row).execute(statement, params).fetchall()
        found += [str(r["diamond_id"]) for r in rows[:37]]
        if len(rows) <= 37:
            return found
        keys = server_keys.load(conn)
        token = cursors.encode(query, rows[36]["sort_value"], rows[36]["diamond_id"], keys)
        after = cursors.decode(query, token, keys)


@pytest.mark.parametrize("form", [WALK, FILTER_FIRST], ids=["walk", "filter-first"])
@pytest.mark.parametrize("sort", ["price_cents", "-carats", "color", "-clarity", "listed_at"])
@pytest.mark.parametrize(("params", "matches"), [FILTERS[1], FILTERS[11], FILTERS[-1]], ids=["carats", "fancy", "four"])
def test_both_forms_walk_every_match_once_in_order(database_url, catalogue, params, matches, sort, form) -> None:
    query = DiamondSearch.model_validate({**params, "sort": sort})
    key = SORTS[query.sort_column]
    expected = sorted(
        (r for r in listed(catalogue) if matches(r)), key=lambda r: (key(r), r["diamond_id"]), reverse=query.descending
    )
    assert search.filter_first(query, form) is (form == FILTER_FIRST)
    with psycopg.connect(database_url) as conn:
        assert walk(conn, query, form) == ids(expected)


def test_filter_first_only_for_few_matches_or_a_steered_sort() -> None:
    round_1ct = DiamondSearch(shape=["ROUND"], carats_min="1", carats_max="1.5", sort="price_cents")
    fancy_by_price = DiamondSearch(fancy=True, sort="price_cents")
    fancy_by_colour = DiamondSearch(fancy=True, sort="color")
    assert search.filter_first(round_1ct, search.FILTER_FIRST_ROWS)
    assert search.filter_first(round_1ct, search.FILTER_FIRST_STEERED_ROWS)  # carats steer the price order
    assert not search.filter_first(round_1ct, search.FILTER_FIRST_STEERED_ROWS + 1)
    assert not search.filter_first(fancy_by_price, search.FILTER_FIRST_ROWS + 1)  # fancy colours are spread by price
    assert search.filter_first(fancy_by_colour, search.FILTER_FIRST_ROWS + 1)  # and bunched at the end by colour
    assert not search.filter_first(DiamondSearch(), 5)  # nothing to filter by: walk
    assert not search.filter_first(round_1ct, None)  # no estimate: leave it to the planner
    statement, _ = search.page(round_1ct, 50, None, 100)
    assert "OFFSET 0" in statement.as_string(None)
