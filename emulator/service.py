"""Answers one prepared GraphQL request: authentication, the `as` wrapper and the data fields.

Top-level fields resolve independently: a failing field becomes null with an error carrying its
path, as a GraphQL server does. The items themselves are projected from inventory columns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from graphql import FieldNode, GraphQLError, GraphQLObjectType, execute_sync
from graphql.execution.values import get_argument_values

from emulator import fields, hostile, malformed
from emulator.auth import TokenStore
from emulator.config import EmulatorConfig, FaultSettings
from emulator.documents import DocumentCache, Prepared, graphql_error_entry, prepare
from emulator.errors import (
    BAD_USER_INPUT,
    UNAUTHENTICATED,
    UNAUTHORIZED_MESSAGE,
    FieldError,
    HttpAuthError,
    QueryInputError,
    error_entry,
)
from emulator.faults import FaultInjector
from emulator.filters import StoneFilter, StoneOrder, parse_order, parse_query
from emulator.inventory import Inventory
from emulator.page import PageContext
from emulator.project import PlannedField, collect_fields, project_object, project_page
from emulator.schema import SCHEMA
from emulator.stats import Stats


def _object_type(name: str) -> GraphQLObjectType:
    found = SCHEMA.type_map[name]
    assert isinstance(found, GraphQLObjectType)
    return found


_QUERY, _AS, _AUTH = _object_type("Query"), _object_type("AuthenticatedQuery"), _object_type("Authenticate")
_RESULT, _SESSION = _object_type("DiamondQueryResult"), _object_type("Session")


@dataclass
class _Run:
    """State of one request's execution."""

    prepared: Prepared
    force_expired: bool
    settings: FaultSettings  # read once: a PUT /_emulator/faults mid-request must not mix settings
    errors: list[dict[str, Any]] = field(default_factory=list)

    def plan(self, object_type: GraphQLObjectType, nodes: list[FieldNode]) -> tuple[PlannedField, ...]:
        return self.prepared.document.plan(object_type, nodes, self.prepared.variables)


Resolver = Callable[["FeedService", _Run, GraphQLObjectType, list[FieldNode], list[str], "str | None"], Any]


class FeedService:
    def __init__(
        self, config: EmulatorConfig, inventory: Inventory, tokens: TokenStore, faults: FaultInjector, stats: Stats
    ) -> None:
        self.config = config
        self.inventory = inventory
        self.tokens = tokens
        self.faults = faults
        self.stats = stats
        self.documents = DocumentCache(SCHEMA)
        missing = fields.missing_resolvers(SCHEMA)
        if missing:
            raise RuntimeError(f"item fields in the schema that nothing serves: {', '.join(missing)}")

    def prepare(self, text: str, variables: dict[str, Any], operation_name: str | None) -> Prepared:
        return prepare(SCHEMA, self.documents, text, variables, operation_name)

    def execute(self, prepared: Prepared, bearer: str | None, *, force_expired: bool = False) -> dict[str, Any]:
        """The response body; raises HttpAuthError when auth fails and auth errors are HTTP 401s."""
        if prepared.kind == "introspection":
            return _introspect(prepared)
        run = _Run(prepared, force_expired, self.faults.settings)
        body: dict[str, Any] = {"data": self._fields(run, _QUERY, [prepared.operation.selection_set], [], bearer)}
        if run.errors:
            body["errors"] = run.errors
        return body

    # -- field walking ------------------------------------------------------------------------
    def _fields(
        self, run: _Run, parent: GraphQLObjectType, sets: Sequence[Any], path: list[str], token: str | None
    ) -> dict[str, Any]:
        grouped = collect_fields(parent.name, sets, run.prepared.document.fragments, run.prepared.variables)
        return {key: self._guarded(run, parent, nodes, [*path, key], token) for key, nodes in grouped.items()}

    def _guarded(
        self, run: _Run, parent: GraphQLObjectType, nodes: list[FieldNode], path: list[str], token: str | None
    ) -> Any:
        """The field's value, or None with an error at its path (HttpAuthError is let through)."""
        name = nodes[0].name.value
        try:
            if name == "__typename":
                return parent.name
            return _RESOLVERS[name](self, run, parent, nodes, path, token)
        except FieldError as exc:
            message, code = exc.message, exc.code
        except QueryInputError as exc:
            message, code = str(exc), BAD_USER_INPUT
        except GraphQLError as exc:  # argument values that do not coerce
            message, code = exc.message, BAD_USER_INPUT
        first = nodes[0].loc
        locations = [{"line": first.start_token.line, "column": first.start_token.column}] if first else None
        run.errors.append(error_entry(message, code, path=list(path), locations=locations))
        return None

    def _args(self, run: _Run, parent: GraphQLObjectType, nodes: list[FieldNode]) -> dict[str, Any]:
        return get_argument_values(parent.fields[nodes[0].name.value], nodes[0], run.prepared.variables)

    def _authorise(self, run: _Run, token: str | None) -> None:
        if run.force_expired or not self.tokens.is_valid(token):
            if self.config.auth_error_style == "http":
                raise HttpAuthError(UNAUTHORIZED_MESSAGE)
            raise FieldError(UNAUTHORIZED_MESSAGE, UNAUTHENTICATED)

    # -- resolvers of the fields above the items -----------------------------------------------
    def _authenticate(
        self, run: _Run, _parent: GraphQLObjectType, nodes: list[FieldNode], path: list[str], _token: str | None
    ) -> dict[str, Any]:
        return self._fields(run, _AUTH, [n.selection_set for n in nodes], path, None)

    def _login(
        self, run: _Run, parent: GraphQLObjectType, nodes: list[FieldNode], _path: list[str], _token: str | None
    ) -> dict[str, Any] | None:
        args = self._args(run, parent, nodes)
        issued = self.tokens.login(args["username"], args["password"])
        if issued is None:
            raise FieldError("Invalid username or password", UNAUTHENTICATED)
        session = {"token": issued, "expires_in": int(self.tokens.ttl_seconds)}
        return project_object(run.plan(_SESSION, nodes), _SESSION.name, session)

    def _as(
        self, run: _Run, parent: GraphQLObjectType, nodes: list[FieldNode], path: list[str], _token: str | None
    ) -> dict[str, Any]:
        token = self._args(run, parent, nodes)["token"]
        self._authorise(run, token)
        return self._fields(run, _AS, [n.selection_set for n in nodes], path, token)

    def _count(
        self, run: _Run, parent: GraphQLObjectType, nodes: list[FieldNode], _path: list[str], token: str | None
    ) -> int:
        self._authorise(run, token)
        query = parse_query(self._args(run, parent, nodes).get("query"), self.inventory.resolve_ids)
        self.stats.count()
        return _reported(self.inventory.count(query), run.settings)

    def _diamonds(
        self, run: _Run, parent: GraphQLObjectType, nodes: list[FieldNode], _path: list[str], token: str | None
    ) -> dict[str, Any]:
        self._authorise(run, token)
        args = self._args(run, parent, nodes)
        query = parse_query(args.get("query"), self.inventory.resolve_ids)
        order = parse_order(args.get("order"))
        offset = 0 if args.get("offset") is None else args["offset"]
        limit = self.config.default_limit if args.get("limit") is None else args["limit"]
        if not 0 <= limit <= self.config.max_limit:
            raise QueryInputError(f"limit must be between 0 and {self.config.max_limit}, got {limit}")
        if offset < 0:
            raise QueryInputError(f"offset must be >= 0, got {offset}")
        plan = run.plan(_RESULT, nodes)
        ordered = self.inventory.ordered(query, order) if any(f.name == "items" for f in plan) else None
        count = len(ordered) if ordered is not None else self.inventory.count(query)
        reported = _reported(count, run.settings)
        out: dict[str, Any] = {}
        for planned in plan:
            if planned.name == "__typename":
                out[planned.key] = _RESULT.name
            elif planned.name == "total_count":
                out[planned.key] = max(reported - offset, 0) if run.settings.total_count_minus_offset else reported
            elif planned.name == "items" and ordered is not None and planned.children is not None:
                take = _page_size(self.inventory.seed, run.settings, query, order, offset, limit, count)
                stones = ordered[offset : offset + take]
                ctx = self._page_context(stones, run.settings)
                out[planned.key] = project_page(planned.children, "Item", ctx)
                self.stats.page(len(stones), short=take < limit)
        return out

    def _page_context(self, stones: np.ndarray, settings: FaultSettings) -> PageContext:
        inventory = self.inventory
        ctx = PageContext(inventory.hasher, stones, inventory.gather(stones), settings.malformed_item_rate)
        if settings.hostile_item_rate <= 0:
            return ctx
        served = hostile_kinds(inventory, stones, settings)
        clean = lambda s: served_clean(inventory, s, settings)  # noqa: E731 - a one-line predicate
        stolen = hostile.stolen_ids(inventory, stones, served, ctx.kinds, clean)
        return PageContext(inventory.hasher, stones, ctx.cols, settings.malformed_item_rate, served, stolen)


def hostile_kinds(inventory: Inventory, stones: np.ndarray, settings: FaultSettings) -> np.ndarray:
    return hostile.kinds(inventory.hasher, stones, settings.hostile_item_rate, settings.hostile_kinds)


def served_clean(inventory: Inventory, stones: np.ndarray, settings: FaultSettings) -> np.ndarray:
    """Stones served exactly as generated: neither malformed nor hostile."""
    clean: np.ndarray = (hostile_kinds(inventory, stones, settings) == hostile.CLEAN) & (
        malformed.kinds(inventory.hasher, stones, settings.malformed_item_rate) == malformed.CLEAN
    )
    return clean


_RESOLVERS: dict[str, Resolver] = {
    "authenticate": FeedService._authenticate,
    "username_and_password": FeedService._login,
    "as": FeedService._as,
    "diamonds_by_query_count": FeedService._count,
    "diamonds_by_query": FeedService._diamonds,
}


def _introspect(prepared: Prepared) -> dict[str, Any]:
    # Rare (schema tooling): graphql-core's executor answers it; our own fields resolve to null.
    operation = prepared.operation
    result = execute_sync(
        SCHEMA,
        prepared.document.document,
        variable_values=prepared.raw_variables,
        operation_name=operation.name.value if operation.name else None,
    )
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [graphql_error_entry(e, BAD_USER_INPUT) for e in result.errors]
    return body


def _reported(count: int, settings: FaultSettings) -> int:
    """What counts say: production's counts disagreed with paging (the count_ratio quirk)."""
    return round(count * settings.count_ratio)


def _page_size(
    seed: int, settings: FaultSettings, query: StoneFilter, order: StoneOrder, offset: int, limit: int, count: int
) -> int:
    """`limit`, or fewer on a deterministic share of pages that are not the last one (a quirk)."""
    if settings.short_page_rate <= 0 or limit < 2 or offset + limit >= count:
        return limit
    digest = hashlib.blake2b(f"{seed}|{query!r}|{order!r}|{offset}".encode(), digest_size=8).digest()
    word = int.from_bytes(digest, "big")
    if (word >> 11) / (1 << 53) >= settings.short_page_rate:
        return limit
    return 1 + word % (limit - 1)
