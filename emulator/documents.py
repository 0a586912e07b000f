"""Parsed and validated GraphQL documents, cached by query text (clients resend the same text every
page), and the preparation of one request: operation choice and variable coercion."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    parse,
    validate,
    visit,
)
from graphql.execution.values import VariableValues, get_variable_values
from graphql.language import Visitor

from emulator.errors import BAD_USER_INPUT, PARSE_FAILED, VALIDATION_FAILED, RequestError, error_entry
from emulator.project import PlannedField, compile_plan

DATA_FIELDS = frozenset({"as", "diamonds_by_query", "diamonds_by_query_count"})


def graphql_error_entry(error: GraphQLError, code: str) -> dict[str, Any]:
    locations = [{"line": loc.line, "column": loc.column} for loc in error.locations or ()]
    return error_entry(error.message, code, path=list(error.path) if error.path else None, locations=locations)


class _DirectiveVariables(Visitor):
    """Notices @skip/@include driven by variables: plans of such documents cannot be cached."""

    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_directive(self, node: Any, *_args: Any) -> None:
        if any(isinstance(arg.value, VariableNode) for arg in node.arguments):
            self.found = True


@dataclass
class Document:
    document: DocumentNode
    operations: dict[str | None, OperationDefinitionNode]
    fragments: dict[str, FragmentDefinitionNode]
    variable_directives: bool
    _plans: dict[tuple[Any, ...], tuple[PlannedField, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, document: DocumentNode) -> Document:
        operations: dict[str | None, OperationDefinitionNode] = {}
        fragments: dict[str, FragmentDefinitionNode] = {}
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                operations[definition.name.value if definition.name else None] = definition
            elif isinstance(definition, FragmentDefinitionNode):
                fragments[definition.name.value] = definition
        finder = _DirectiveVariables()
        visit(document, finder)
        return cls(document, operations, fragments, finder.found)

    def plan(
        self, object_type: GraphQLObjectType, nodes: Sequence[FieldNode], variables: VariableValues | None
    ) -> tuple[PlannedField, ...]:
        """The compiled sub-selection of `nodes`, fields whose value is an `object_type`."""
        sets = [n.selection_set for n in nodes if n.selection_set]
        if self.variable_directives:
            return compile_plan(object_type, sets, self.fragments, variables)
        key = (object_type.name, *(id(n) for n in nodes))
        found = self._plans.get(key)
        if found is None:
            found = self._plans[key] = compile_plan(object_type, sets, self.fragments, None)
        return found

    def kind(self, operation: OperationDefinitionNode) -> str:
        """`data`, `auth`, `introspection` or `other`, from the top-level field names."""
        names = self._top_level_names(operation.selection_set, set())
        if names & DATA_FIELDS:
            return "data"
        if "authenticate" in names:
            return "auth"
        if any(n.startswith("__") and n != "__typename" for n in names):
            return "introspection"
        return "other"

    def _top_level_names(self, selection_set: SelectionSetNode, seen: set[str]) -> set[str]:
        names: set[str] = set()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                names |= self._top_level_names(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                seen.add(selection.name.value)
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    names |= self._top_level_names(fragment.selection_set, seen)
        return names


class DocumentCache:
    """Query text -> validated Document (or the errors it failed with), least recently used out."""

    def __init__(self, schema: GraphQLSchema, max_entries: int = 256) -> None:
        self._schema = schema
        self._max_entries = max_entries
        self._entries: OrderedDict[str, Document | RequestError] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> Document:
        with self._lock:
            entry = self._entries.get(text)
            if entry is not None:
                self._entries.move_to_end(text)
        if entry is None:
            entry = self._load(text)
            with self._lock:
                self._entries[text] = entry
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
        if isinstance(entry, RequestError):
            raise entry
        return entry

    def _load(self, text: str) -> Document | RequestError:
        try:
            document = parse(text)
        except GraphQLError as exc:
            return RequestError([graphql_error_entry(exc, PARSE_FAILED)])
        errors = validate(self._schema, document)
        if errors:
            return RequestError([graphql_error_entry(e, VALIDATION_FAILED) for e in errors])
        return Document.of(document)


@dataclass(frozen=True)
class Prepared:
    """A request ready to run: its validated document, chosen operation and coerced variables."""

    document: Document
    operation: OperationDefinitionNode
    variables: VariableValues
    raw_variables: dict[str, Any]
    kind: str


def prepare(
    schema: GraphQLSchema, cache: DocumentCache, text: str, variables: dict[str, Any], operation_name: str | None
) -> Prepared:
    document = cache.get(text)
    operation = _choose(document, operation_name)
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
    if not isinstance(coerced, VariableValues):
        raise RequestError([graphql_error_entry(e, BAD_USER_INPUT) for e in coerced])
    return Prepared(document, operation, coerced, variables, document.kind(operation))


def _choose(document: Document, name: str | None) -> OperationDefinitionNode:
    if name is not None:
        operation = document.operations.get(name)
        if operation is None:
            raise RequestError([error_entry(f"Unknown operation named '{name}'.", BAD_USER_INPUT)])
    elif len(document.operations) == 1:
        operation = next(iter(document.operations.values()))
    else:
        message = "Must provide operation name if query contains multiple operations."
        raise RequestError([error_entry(message, BAD_USER_INPUT)])
    if operation.operation != OperationType.QUERY:
        message = f"This feed only answers queries, not {operation.operation.value}s."
        raise RequestError([error_entry(message, BAD_USER_INPUT)])
    return operation
