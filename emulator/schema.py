"""The feed's GraphQL schema (SDL), built with graphql-core and used to parse and validate requests.

Results are not produced by graphql-core's executor (too slow per page); the schema is the contract
requests are validated against and the type information the projector walks.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    EnumValueNode,
    GraphQLError,
    GraphQLScalarType,
    GraphQLSchema,
    StringValueNode,
    ValueNode,
    build_schema,
)

SDL = '''
"""A grade or other enum-like value, accepted bare (`color: [D, E]`) or quoted (`color: ["D"]`)."""
scalar EnumString

"""Half-open range [from, to) in whole dollars; either end may be omitted."""
input DollarRange { from: Int, to: Int }

"""Half-open range [from, to) in carats; either end may be omitted."""
input CaratRange { from: Float, to: Float }

"""Half-open range [from, to) of ISO-8601 timestamps (UTC when no offset is given)."""
input TimeRange { from: String, to: String }

input DiamondQuery {
  labgrown: Boolean
  shapes: [EnumString!]
  sizes: [CaratRange!]
  color: [EnumString!]
  clarity: [EnumString!]
  cut: [EnumString!]
  polish: [EnumString!]
  symmetry: [EnumString!]
  has_image: Boolean
  has_v360: Boolean
  availability: [EnumString!]
  excludeFairPoorCuts: Boolean
  hide_memo: Boolean
  dollar_value: DollarRange
  dollar_per_carat: DollarRange
  updated: TimeRange
  ids: [ID!]
  certificate_numbers: [String!]
}

enum DiamondOrderType { createdAt price size discount none }
enum OrderDirection { ASC DESC }
input DiamondOrder { type: DiamondOrderType, direction: OrderDirection }

type Query {
  authenticate: Authenticate
  as(token: String!): AuthenticatedQuery
  diamonds_by_query(query: DiamondQuery, offset: Int, limit: Int, order: DiamondOrder): DiamondQueryResult
  diamonds_by_query_count(query: DiamondQuery): Int
}

type Authenticate {
  username_and_password(username: String!, password: String!): Session
}

type Session {
  token: String
  "Seconds until the token expires."
  expires_in: Int
}

type AuthenticatedQuery {
  diamonds_by_query(query: DiamondQuery, offset: Int, limit: Int, order: DiamondOrder): DiamondQueryResult
  diamonds_by_query_count(query: DiamondQuery): Int
}

type DiamondQueryResult {
  total_count: Int
  items: [Item]
}

"An offer of one stone. Money is in integer cents."
type Item {
  id: ID
  price: Int
  discount: Float
  diamond_price: Int
  markup_price: Int
  markup_discount: Float
  diamond: Diamond
}

type Diamond {
  id: ID
  availability: String
  HoldId: String
  NivodaStockId: String
  supplierStockId: String
  image: String
  video: String
  v360: V360
  eyeClean: Boolean
  "Tinge levels 0 (none) to 3."
  brown: Int
  green: Int
  blue: Int
  gray: Int
  milky: Int
  mine_of_origin: String
  "Days within which the stone may be returned; 0 means no returns."
  return_window: Int
  delivery_time: DeliveryTime
  supplier: Supplier
  certificate: Certificate
}

type V360 { url: String }

type DeliveryTime {
  min_business_days: Int
  max_business_days: Int
  express_timeline_applicable: Boolean
}

type Supplier { id: ID, name: String, legal_name: String }

type Certificate {
  id: ID
  lab: String
  certNumber: String
  pdfUrl: String
  shape: String
  carats: Float
  color: String
  clarity: String
  cut: String
  polish: String
  symmetry: String
  floInt: String
  floCol: String
  length: Float
  width: Float
  depth: Float
  depthPercentage: Float
  table: Float
  girdle: String
  culetSize: String
  crownAngle: Float
  crownHeight: Float
  pavAngle: Float
  pavDepth: Float
  labgrown: Boolean
  labgrown_type: String
  treated: Boolean
  f_color: String
  f_intensity: String
  f_overtone: String
}
'''


def _enum_string_literal(node: ValueNode, _variables: Any = None) -> str:
    if isinstance(node, EnumValueNode | StringValueNode):
        return node.value
    raise GraphQLError("EnumString accepts a bare enum value or a string.", node)


def _enum_string_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise GraphQLError(f"EnumString cannot represent non-string value: {value!r}")


def build() -> GraphQLSchema:
    schema = build_schema(SDL)
    scalar = schema.type_map["EnumString"]
    assert isinstance(scalar, GraphQLScalarType)
    # build_schema gives custom scalars pass-through coercion; install the lenient enum rules. (graphql-core
    # types parse_* and serialize as methods, so replacing them on this instance needs the ignores.)
    scalar.coerce_input_literal = _enum_string_literal
    scalar.parse_literal = _enum_string_literal  # type: ignore[method-assign,assignment]
    scalar.coerce_input_value = _enum_string_value
    scalar.parse_value = _enum_string_value  # type: ignore[method-assign]
    scalar.coerce_output_value = _enum_string_value
    scalar.serialize = _enum_string_value  # type: ignore[method-assign]
    return schema


SCHEMA = build()
