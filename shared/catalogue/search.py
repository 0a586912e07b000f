"""A `DiamondSearch` as SQL: the page query (keyset), the capped count and its estimate.

Builders only: they return composed SQL and parameters, and whoever holds a connection (the API's
async pool, a benchmark's plain connection) runs them, so every caller runs the same statement.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from shared.catalogue import records
from shared.catalogue.cursor import Position
from shared.catalogue.query import RANGES, SETS, DiamondSearch

# The sort key's column; grades sort by their rank columns (migration 0006).
_SORT_SQL = {"color": "color_rank", "clarity": "clarity_rank"}

# When the page filters first instead of walking the sort column's index. The planner costs the walk
# as if matches were spread evenly along the sort order. That holds for an unrelated sort (fancy
# colours by price: 3 ms) and fails when the filters steer the sort column: 1-1.5 ct stones are
# nowhere near the cheapest, so "by price" walked past 51,000 cheaper stones to fill a page (95 ms
# at 1M stones) and fancy colours by colour rank walked 974,000 white stones (3.4 s). Filtering
# through an index and sorting the matches costs about 2-4 us per match (12,000 matches: 24 ms;
# 26,000: 130 ms), so: always up to FILTER_FIRST_ROWS expected matches, and up to
# FILTER_FIRST_STEERED_ROWS when a filter steers the sort. Measured in bench/explain.md.
FILTER_FIRST_ROWS = 10_000
FILTER_FIRST_STEERED_ROWS = 30_000
_SIZE_AND_PRICE = frozenset(
    f"{stem}_{end}" for stem in ("carats", "price_cents", "price_per_carat_cents") for end in ("min", "max")
)
_STEERED_BY = {
    "price_cents": _SIZE_AND_PRICE,
    "price_per_carat_cents": _SIZE_AND_PRICE,
    "carats": _SIZE_AND_PRICE,
    "color": frozenset({"color", "fancy", "fancy_color"}),
    "clarity": frozenset({"clarity"}),
    "listed_at": frozenset(),
}

Statement = tuple[sql.Composed, dict[str, Any]]
# Fields computed from supplier media URLs, which stay in the database (shared/catalogue/media.py):
# the API turns image_url and video_url into its own links.
_COMPUTED = {
    "image_url": sql.SQL("image_url IS NOT NULL"),
    "video_url": sql.SQL("video_url IS NOT NULL"),
    "has_v360": sql.SQL("v360_url IS NOT NULL"),
}


def _where(search: DiamondSearch) -> tuple[list[sql.Composable], dict[str, Any]]:
    clauses: list[sql.Composable] = []
    params: dict[str, Any] = {}
    for name in SETS:
        values = getattr(search, name)
        if values:
            clauses.append(sql.SQL("{} = ANY({})").format(sql.Identifier(name), sql.Placeholder(name)))
            params[name] = sorted(set(values))
    for stem in RANGES:
        for bound, operator in (("min", ">="), ("max", "<=")):
            value = getattr(search, f"{stem}_{bound}")
            if value is not None:
                key = f"{stem}_{bound}"
                clauses.append(
                    sql.SQL("{} {} {}").format(sql.Identifier(stem), sql.SQL(operator), sql.Placeholder(key))
                )
                params[key] = value
    if search.lab_grown is not None:
        clauses.append(sql.SQL("lab_grown = {}").format(sql.Placeholder("lab_grown")))
        params["lab_grown"] = search.lab_grown
    if search.fancy is not None:
        clauses.append(sql.SQL("fancy_color IS NOT NULL" if search.fancy else "fancy_color IS NULL"))
    if not search.include_delisted:
        clauses.append(sql.SQL("delisted_at IS NULL"))
    return clauses, params


def _joined(clauses: list[sql.Composable]) -> sql.Composable:
    return sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("true")


def sort_sql_column(search: DiamondSearch) -> str:
    return _SORT_SQL.get(search.sort_column, search.sort_column)


def page(search: DiamondSearch, limit: int, after: Position | None, expected_rows: int | None = None) -> Statement:
    """One page plus one row: the extra row says whether a next page exists.

    `expected_rows` is the planner's estimate of the matches (`estimated_count`); when it is at most
    FILTER_FIRST_ROWS the statement may filter first (`filter_first`). Without it the planner chooses alone.
    """
    clauses, params = _where(search)
    column = sql.Identifier(sort_sql_column(search))
    direction = sql.SQL("DESC" if search.descending else "ASC")
    if after is not None:
        # A row comparison matches the (column, diamond_id) index in either direction.
        clauses.append(
            sql.SQL("({}, diamond_id) {} ({}, {})").format(
                column,
                sql.SQL("<" if search.descending else ">"),
                sql.Placeholder("after_value"),
                sql.Placeholder("after_id"),
            )
        )
        params.update(after_value=after.value, after_id=after.diamond_id)
    fields = records.FULL if search.fields == "full" else records.SLIM
    source = sql.SQL("diamonds WHERE {}").format(_joined(clauses))
    if filter_first(search, expected_rows):
        # OFFSET 0 keeps the planner from pushing the ORDER BY ... LIMIT into the subquery, so the
        # subquery is planned for "all matches" (filter indexes, bitmap scans) and the sort is a top-N.
        source = sql.SQL("(SELECT * FROM {} OFFSET 0) AS matching").format(source)
    statement = sql.SQL(
        "SELECT {fields}, {column} AS sort_value FROM {source} "
        "ORDER BY {column} {direction}, diamond_id {direction} LIMIT {limit}"
    ).format(
        fields=_columns(fields),
        column=column,
        source=source,
        direction=direction,
        limit=sql.Literal(limit + 1),
    )
    return statement, params


def filter_first(search: DiamondSearch, expected_rows: int | None) -> bool:
    """Whether the page statement filters before it sorts (see FILTER_FIRST_ROWS)."""
    filters = search.filters()
    if expected_rows is None or not filters:
        return False
    if expected_rows <= FILTER_FIRST_ROWS:
        return True
    steered = not _STEERED_BY[search.sort_column].isdisjoint(filters)
    return steered and expected_rows <= FILTER_FIRST_STEERED_ROWS


def capped_count(search: DiamondSearch, cap: int) -> Statement:
    """How many stones match, counting no further than cap + 1."""
    clauses, params = _where(search)
    statement = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM diamonds WHERE {} LIMIT {}) AS matching").format(
        _joined(clauses), sql.Literal(cap + 1)
    )
    return statement, params


def estimated_count(search: DiamondSearch) -> Statement:
    """The planner's row estimate for the search: what a count beyond the cap reports."""
    clauses, params = _where(search)
    return sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM diamonds WHERE {}").format(_joined(clauses)), params


# How many times the count cap an estimate must be to be reported without counting. Counting to the
# cap can cost a whole-table scan (350 ms at 1M stones); an estimate ten times beyond the cap that is
# really under it would take filters the planner misjudges tenfold.
ESTIMATE_TRUSTED_ABOVE = 10


def count_needed(expected_rows: int, cap: int) -> bool:
    """Whether to run `capped_count`, or report the estimate as it is (flagged as an estimate)."""
    return expected_rows <= cap * ESTIMATE_TRUSTED_ABOVE


def plan_rows(explain_output: Any) -> int:
    """The top plan node's row estimate from EXPLAIN (FORMAT JSON)."""
    return int(explain_output[0]["Plan"]["Plan Rows"])


def _columns(names: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(_COMPUTED[name], sql.Identifier(name)) if name in _COMPUTED else sql.Identifier(name)
        for name in names
    )


def by_id() -> sql.Composed:
    """One stone, every field callers may see (parameter: diamond_id)."""
    return sql.SQL("SELECT {} FROM diamonds WHERE diamond_id = %s").format(_columns(records.FULL))


def known() -> sql.SQL:
    """One row when the catalogue holds the stone, listed or delisted (parameter: diamond_id)."""
    return sql.SQL("SELECT 1 AS found FROM diamonds WHERE diamond_id = %s")


def media_url(column: str) -> sql.Composed:
    """A stone's supplier media URL, for the media proxy only (parameter: diamond_id)."""
    return sql.SQL("SELECT {} AS url FROM diamonds WHERE diamond_id = %s").format(sql.Identifier(column))


def price_history(limit: int = 1000) -> sql.Composed:
    """A stone's price changes, newest first (parameter: diamond_id)."""
    return sql.SQL(
        "SELECT {} FROM price_history WHERE diamond_id = %s ORDER BY changed_at DESC, price_history_id DESC LIMIT {}"
    ).format(_columns(records.PRICE_HISTORY), sql.Literal(limit))
