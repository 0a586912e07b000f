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

Statement = tuple[sql.Composed, dict[str, Any]]


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


def page(search: DiamondSearch, limit: int, after: Position | None) -> Statement:
    """One page plus one row: the extra row says whether a next page exists."""
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
    statement = sql.SQL(
        "SELECT {fields}, {column} AS sort_value FROM diamonds WHERE {where} "
        "ORDER BY {column} {direction}, diamond_id {direction} LIMIT {limit}"
    ).format(
        fields=sql.SQL(", ").join(map(sql.Identifier, fields)),
        column=column,
        where=_joined(clauses),
        direction=direction,
        limit=sql.Literal(limit + 1),
    )
    return statement, params


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


def plan_rows(explain_output: Any) -> int:
    """The top plan node's row estimate from EXPLAIN (FORMAT JSON)."""
    return int(explain_output[0]["Plan"]["Plan Rows"])


def _columns(names: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, names))


def by_id() -> sql.Composed:
    """One stone, every field callers may see (parameter: diamond_id)."""
    return sql.SQL("SELECT {} FROM diamonds WHERE diamond_id = %s").format(_columns(records.FULL))


def price_history(limit: int = 1000) -> sql.Composed:
    """A stone's price changes, newest first (parameter: diamond_id)."""
    return sql.SQL(
        "SELECT {} FROM price_history WHERE diamond_id = %s ORDER BY changed_at DESC, price_history_id DESC LIMIT {}"
    ).format(_columns(records.PRICE_HISTORY), sql.Literal(limit))
