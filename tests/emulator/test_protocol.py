"""Nivoda's wire protocol: login, both token styles, errors, enums, selection features."""

from __future__ import annotations

import time

import httpx
import pytest

from emulator import EmulatorConfig, RunningEmulator

# The shape of Nivoda's own published example query, which the emulator answers as is: bare enums,
# inline arguments, sent with a Bearer header.
TEST_VECTOR = """
query {
  diamonds_by_query(
    query: { labgrown: false, shapes: ["ROUND"], sizes: [{ from: 1, to: 1.5 }],
             has_v360: true, has_image: true, color: [D, E] },
    offset: 0, limit: 50, order: { type: price, direction: ASC }
  ) {
    items {
      id price discount
      diamond {
        id video image availability supplierStockId brown green milky eyeClean mine_of_origin
        certificate { id lab shape certNumber cut carats clarity polish symmetry color
                      width length depth girdle floInt floCol depthPercentage table }
      }
    }
    total_count
  }
}
"""

AS_VARIABLES = """
query Search($token: String!, $query: DiamondQuery!, $offset: Int, $limit: Int, $order: DiamondOrder) {
  as(token: $token) {
    diamonds_by_query(query: $query, offset: $offset, limit: $limit, order: $order) {
      items { id price diamond { id certificate { carats color shape } } }
      total_count
    }
  }
}
"""
VECTOR_FILTER = {
    "labgrown": False,
    "shapes": ["ROUND"],
    "sizes": [{"from": 1, "to": 1.5}],
    "has_v360": True,
    "has_image": True,
    "color": ["D", "E"],
}
CERT_KEYS = {
    "id",
    "lab",
    "shape",
    "certNumber",
    "cut",
    "carats",
    "clarity",
    "polish",
    "symmetry",
    "color",
    "width",
    "length",
    "depth",
    "girdle",
    "floInt",
    "floCol",
    "depthPercentage",
    "table",
}


def test_test_vector_with_bearer_header(feed):
    result = feed.data(TEST_VECTOR, bearer=feed.token)["diamonds_by_query"]
    items = result["items"]
    assert 0 < len(items) <= 50
    assert result["total_count"] == feed.count(VECTOR_FILTER)
    prices = [item["price"] for item in items]
    assert prices == sorted(prices)
    for item in items:
        assert set(item) == {"id", "price", "discount", "diamond"}
        assert isinstance(item["price"], int)
        assert isinstance(item["discount"], float)
        diamond = item["diamond"]
        assert set(diamond) == {
            "id",
            "video",
            "image",
            "availability",
            "supplierStockId",
            "brown",
            "green",
            "milky",
            "eyeClean",
            "mine_of_origin",
            "certificate",
        }
        assert diamond["id"] != item["id"]  # the stone id is not the offer id
        assert diamond["image"]
        assert diamond["video"]
        certificate = diamond["certificate"]
        assert set(certificate) == CERT_KEYS
        assert 1.0 <= certificate["carats"] < 1.5
        assert certificate["color"] in {"D", "E"}
        assert certificate["shape"].upper().startswith(("ROUND", "RD"))
        assert round(certificate["width"], 2) == certificate["width"]


def test_same_operation_with_variables_inside_as(feed):
    variables = {
        "token": feed.token,
        "query": VECTOR_FILTER,
        "offset": 0,
        "limit": 50,
        "order": {"type": "price", "direction": "ASC"},
    }
    wrapped = feed.data(AS_VARIABLES, variables)["as"]["diamonds_by_query"]
    direct = feed.data(TEST_VECTOR, bearer=feed.token)["diamonds_by_query"]
    assert [i["id"] for i in wrapped["items"]] == [i["id"] for i in direct["items"]]
    assert wrapped["total_count"] == direct["total_count"]


def test_authenticate_returns_a_fresh_opaque_token(feed):
    first, second = feed.login(), feed.login()
    assert first != second
    assert len(first) >= 32
    assert feed.count() == feed.emulator.inventory.truth()


def test_bad_credentials_are_unauthenticated(feed):
    query = '{ authenticate { username_and_password(username: "someone", password: "wrong") { token } } }'
    body = feed.post(query).json()
    assert body["data"] == {"authenticate": {"username_and_password": None}}
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["path"] == ["authenticate", "username_and_password"]


@pytest.mark.parametrize("bearer", [None, "not-a-token"])
def test_missing_or_unknown_token_is_a_graphql_auth_error(feed, bearer):
    response = feed.post("{ diamonds_by_query_count(query: {}) }", bearer=bearer)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"diamonds_by_query_count": None}
    [error] = body["errors"]
    assert error["message"] == "Unauthorized: token expired or invalid"
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}


def test_unknown_token_in_as_wrapper(feed):
    body = feed.post('{ as(token: "nope") { diamonds_by_query_count } }').json()
    assert body["data"] == {"as": None}
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body["errors"][0]["path"] == ["as"]


def test_tokens_expire_after_their_ttl():
    with RunningEmulator(EmulatorConfig(port=0, size=200, token_ttl_seconds=0.5)) as running, httpx.Client() as http:
        token = running.issue_token()
        query = {"query": "{ diamonds_by_query_count }"}
        fresh = http.post(running.url, json=query, headers={"Authorization": f"Bearer {token}"}).json()
        assert fresh == {"data": {"diamonds_by_query_count": 200}}
        time.sleep(0.6)
        stale = http.post(running.url, json=query, headers={"Authorization": f"Bearer {token}"}).json()
        assert stale["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_http_auth_error_style_answers_401():
    with RunningEmulator(EmulatorConfig(port=0, size=200, auth_error_style="http")) as running, httpx.Client() as http:
        response = http.post(running.url, json={"query": "{ diamonds_by_query_count }"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_admin_can_expire_every_token(feed):
    assert feed.http.post(f"{feed.emulator.base_url}/_emulator/tokens/expire").json()["expired"] >= 1
    body = feed.post("{ diamonds_by_query_count }", bearer=feed.token).json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(("limit", "offset"), [(51, 0), (-1, 0), (10, -5)])
def test_limit_over_50_and_negative_values_are_bad_user_input(feed, limit, offset):
    body = feed.post(
        f"{{ diamonds_by_query(limit: {limit}, offset: {offset}) {{ total_count }} }}", bearer=feed.token
    ).json()
    assert body["data"] == {"diamonds_by_query": None}
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_default_limit_is_50(feed):
    items = feed.data("{ diamonds_by_query { items { id } } }", bearer=feed.token)["diamonds_by_query"]["items"]
    assert len(items) == 50


def test_syntax_error_is_parse_failed(feed):
    response = feed.post("{ diamonds_by_query(limit: 5 { total_count } }", bearer=feed.token)
    assert response.status_code == 200
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert body["errors"][0]["locations"]


@pytest.mark.parametrize(
    "query",
    [
        "{ diamonds_by_query { items { no_such_field } } }",
        "{ diamonds_by_query(query: { colour: [D] }) { total_count } }",
        '{ diamonds_by_query(order: { type: "price" }) { total_count } }',  # order types are a real enum
        "{ diamonds_by_query(query: { color: [1] }) { total_count } }",
        "{ diamonds_by_query(query: { dollar_per_carat: { from: 10.5 } }) { total_count } }",  # whole dollars
    ],
)
def test_invalid_documents_fail_validation(feed, query):
    body = feed.post(query, bearer=feed.token).json()
    assert "data" not in body
    assert {e["extensions"]["code"] for e in body["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}


def test_bad_variable_values_are_bad_user_input(feed):
    body = feed.post(AS_VARIABLES, {"token": feed.token, "query": {"color": [7]}}).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "data" not in body


def test_unknown_grade_is_bad_user_input_but_unknown_shape_matches_nothing(feed):
    bad = feed.post("{ diamonds_by_query_count(query: { color: [Q] }) }", bearer=feed.token).json()
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "color" in bad["errors"][0]["message"]
    assert feed.count({"shapes": ["TRILLION"]}) == 0


def test_bare_and_quoted_enums_and_variables_agree(feed):
    bare = feed.data(
        "{ diamonds_by_query_count(query: { color: [D, E], cut: [EX], shapes: [ROUND] }) }", bearer=feed.token
    )
    quoted = feed.data(
        '{ diamonds_by_query_count(query: { color: ["D", "E"], cut: ["EX"], shapes: ["ROUND"] }) }', bearer=feed.token
    )
    assert bare == quoted
    assert bare["diamonds_by_query_count"] == feed.count({"color": ["D", "E"], "cut": ["EX"], "shapes": ["ROUND"]})
    assert bare["diamonds_by_query_count"] > 0


def test_aliases_fragments_and_typename(feed):
    query = """
    fragment Stone on Diamond { stoneId: id certificate { ...Cert } }
    fragment Cert on Certificate { carats weight: carats }
    query Mixed {
      __typename
      cheap: diamonds_by_query(limit: 2, order: {type: price}) {
        __typename
        items { offer: id ... on Item { diamond { ...Stone __typename } } }
      }
      dear: diamonds_by_query(limit: 1, order: {type: price, direction: DESC}) { items { price } }
      n: diamonds_by_query_count
    }
    """
    data = feed.data(query, bearer=feed.token)
    assert data["__typename"] == "Query"
    assert data["cheap"]["__typename"] == "DiamondQueryResult"
    first = data["cheap"]["items"][0]
    assert set(first) == {"offer", "diamond"}
    assert set(first["diamond"]) == {"stoneId", "certificate", "__typename"}
    assert first["diamond"]["__typename"] == "Diamond"
    assert first["diamond"]["certificate"]["carats"] == first["diamond"]["certificate"]["weight"]
    assert data["n"] == feed.emulator.inventory.truth()
    assert data["dear"]["items"][0]["price"] >= 0


def test_skip_and_include_directives(feed):
    query = """
    query ($withPrice: Boolean!) {
      diamonds_by_query(limit: 1) { items { id price @include(if: $withPrice) discount @skip(if: true) } }
    }
    """
    with_price = feed.data(query, {"withPrice": True}, bearer=feed.token)["diamonds_by_query"]["items"][0]
    without = feed.data(query, {"withPrice": False}, bearer=feed.token)["diamonds_by_query"]["items"][0]
    assert set(with_price) == {"id", "price"}
    assert set(without) == {"id"}


def test_operation_name_selects_among_several(feed):
    document = "query A { diamonds_by_query_count } query B { __typename }"
    response = feed.http.post(feed.emulator.url, json={"query": document, "operationName": "B"})
    assert response.json() == {"data": {"__typename": "Query"}}
    ambiguous = feed.http.post(feed.emulator.url, json={"query": document}).json()
    assert ambiguous["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_introspection_is_answered(feed):
    data = feed.data('{ __type(name: "Certificate") { fields { name } } }')
    names = {f["name"] for f in data["__type"]["fields"]}
    assert {"certNumber", "carats", "floInt", "f_color"} <= names


@pytest.mark.parametrize(("body", "status"), [(b"not json", 400), (b'{"variables": {}}', 400), (b"[]", 400)])
def test_malformed_http_requests_are_400(feed, body, status):
    response = feed.http.post(feed.emulator.url, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_get_on_graphql_endpoint_is_405(feed):
    assert feed.http.get(feed.emulator.url).status_code == 405
