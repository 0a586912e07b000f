"""The GraphQL documents caratflow sends to Nivoda, for both ways of passing the token.

Arguments always travel as variables, never spliced into the query text: nothing in a filter can
change the document, and the feed sees one query text per operation (its parse cache stays warm).
"""

from __future__ import annotations

from typing import Literal

TokenMode = Literal["header", "wrapper"]

LOGIN = """
query Login($username: String!, $password: String!) {
  authenticate { username_and_password(username: $username, password: $password) { token } }
}"""

# Every item field the catalogue maps: the offer (id and prices), its stone (availability, media, supplier)
# and the stone's certificate (grading and measurements).
ITEM_FIELDS = """
id price discount diamond_price markup_price markup_discount
diamond {
  id availability HoldId NivodaStockId supplierStockId image video v360 { url }
  eyeClean brown green blue gray milky mine_of_origin return_window
  delivery_time { min_business_days max_business_days }
  supplier { id name legal_name }
  certificate {
    id lab certNumber pdfUrl shape carats color clarity cut polish symmetry floInt floCol
    length width depth depthPercentage table girdle culetSize crownAngle crownHeight pavAngle pavDepth
    labgrown labgrown_type treated f_color f_intensity f_overtone
  }
}"""

_PAGE_FIELD = (
    "diamonds_by_query(query: $query, offset: $offset, limit: $limit, order: $order)"
    f" {{ total_count items {{ {ITEM_FIELDS} }} }}"
)
_COUNT_FIELD = "diamonds_by_query_count(query: $query)"
_PAGE_VARS = "$query: DiamondQuery, $offset: Int, $limit: Int, $order: DiamondOrder"
_COUNT_VARS = "$query: DiamondQuery"


def page_query(mode: TokenMode) -> str:
    """One page of items; the answer is under data[.as].diamonds_by_query."""
    return _wrap("Page", _PAGE_VARS, _PAGE_FIELD, mode)


def count_query(mode: TokenMode) -> str:
    """A count; the answer is under data[.as].diamonds_by_query_count."""
    return _wrap("Count", _COUNT_VARS, _COUNT_FIELD, mode)


def _wrap(name: str, variables: str, field: str, mode: TokenMode) -> str:
    if mode == "header":
        return f"query {name}({variables}) {{ {field} }}"
    return f"query {name}($token: String!, {variables}) {{ as(token: $token) {{ {field} }} }}"
