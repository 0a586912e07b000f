"""Walking a validated selection set: field collection, compiled plans, and projection.

A plan is the selection set of one object type compiled once per document (aliases resolved,
fragments and inline fragments merged, @skip/@include applied); projecting a page evaluates each
planned field once as a column and zips the columns into response objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLObjectType,
    GraphQLSkipDirective,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
)
from graphql.execution.values import VariableValues, get_directive_values

from emulator import fields, hostile, malformed
from emulator.page import PageContext


@dataclass(frozen=True)
class PlannedField:
    key: str  # response key: the alias, or the field name
    name: str
    children: tuple[PlannedField, ...] | None = None  # set for object fields
    child_type: str | None = None


def collect_fields(
    type_name: str,
    selection_sets: Iterable[SelectionSetNode],
    fragments: dict[str, FragmentDefinitionNode],
    variables: VariableValues | None,
) -> dict[str, list[FieldNode]]:
    """Field nodes by response key, in order, as the GraphQL spec's CollectFields describes."""
    grouped: dict[str, list[FieldNode]] = {}
    visited: set[str] = set()

    def visit(selection_set: SelectionSetNode) -> None:
        for selection in selection_set.selections:
            if not _included(selection, variables):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                grouped.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or condition.name.value == type_name:
                    visit(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if name in visited or fragment is None:
                    continue
                visited.add(name)
                # The schema has no interfaces or unions: a condition matches only its own type.
                if fragment.type_condition.name.value == type_name:
                    visit(fragment.selection_set)

    for selection_set in selection_sets:
        visit(selection_set)
    return grouped


def _included(node: Any, variables: VariableValues | None) -> bool:
    if not node.directives:
        return True
    skip = get_directive_values(GraphQLSkipDirective, node, variables)
    if skip is not None and skip["if"] is True:
        return False
    include = get_directive_values(GraphQLIncludeDirective, node, variables)
    return not (include is not None and include["if"] is False)


def compile_plan(
    parent: GraphQLObjectType,
    selection_sets: Iterable[SelectionSetNode],
    fragments: dict[str, FragmentDefinitionNode],
    variables: VariableValues | None,
) -> tuple[PlannedField, ...]:
    planned = []
    for key, nodes in collect_fields(parent.name, selection_sets, fragments, variables).items():
        name = nodes[0].name.value
        if name == "__typename":
            planned.append(PlannedField(key, name))
            continue
        child = get_named_type(parent.fields[name].type)
        if isinstance(child, GraphQLObjectType):
            sub = compile_plan(child, (n.selection_set for n in nodes if n.selection_set), fragments, variables)
            planned.append(PlannedField(key, name, sub, child.name))
        else:
            planned.append(PlannedField(key, name))
    return tuple(planned)


def project_page(plan: Sequence[PlannedField], type_name: str, ctx: PageContext) -> list[dict[str, Any] | None]:
    """One response object per stone of the page, projected column by column."""
    return _rows(plan, type_name, ctx, None)


def _rows(
    plan: Sequence[PlannedField], type_name: str, ctx: PageContext, absent: np.ndarray | None
) -> list[dict[str, Any] | None]:
    keys, columns = [], []
    for field in plan:
        keys.append(field.key)
        columns.append(_column(field, type_name, ctx))
    rows: list[dict[str, Any] | None] = [dict(zip(keys, values, strict=True)) for values in zip(*columns, strict=True)]
    if ctx.any_hostile:
        hostile.add_keys(type_name, rows, ctx.hostile_kinds)
    if absent is not None:
        rows = [None if gone else row for row, gone in zip(rows, absent.tolist(), strict=True)]
    return rows


def _column(field: PlannedField, type_name: str, ctx: PageContext) -> list[Any]:
    if field.name == "__typename":
        return [type_name] * ctx.n
    ident = (type_name, field.name)
    if field.children is None:
        values = ctx.memo(ident, lambda: fields.LEAVES[ident](ctx))
        # Aliases of one field share the memoised column: copy before patching in place.
        if ctx.any_malformed:
            values = malformed.patch_values(ident, list(values), ctx.kinds)
        if ctx.any_hostile:
            values = hostile.patch_values(ident, values, ctx.hostile_kinds, ctx.indices, ctx.stolen_ids)
        return values
    present = fields.OBJECTS[ident](ctx)
    absent = None if present is None else ~present
    broken = ctx.malformed_absent(ident)
    if broken is not None:
        absent = broken if absent is None else absent | broken
    return _rows(field.children, field.child_type or "", ctx, absent)


def project_object(plan: Sequence[PlannedField], type_name: str, value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Projection of a small dict-backed object (Session): nested values are dicts too."""
    if value is None:
        return None
    out: dict[str, Any] = {}
    for field in plan:
        if field.name == "__typename":
            out[field.key] = type_name
        elif field.children is None:
            out[field.key] = value.get(field.name)
        else:
            out[field.key] = project_object(field.children, field.child_type or "", value.get(field.name))
    return out
