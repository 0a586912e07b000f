"""The row of a statement that always returns one."""

from __future__ import annotations

from typing import TypeVar

Row = TypeVar("Row")


def one(row: Row | None) -> Row:
    """`row` (a fetchone() result) when the statement cannot return none: an aggregate without GROUP BY, a
    SELECT without FROM, INSERT ... RETURNING of one row, a function with OUT parameters. psycopg types
    every fetchone() as possibly None."""
    if row is None:
        raise LookupError("the statement returned no row")
    return row
