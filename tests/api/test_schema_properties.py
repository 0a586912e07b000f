"""schemathesis against the served OpenAPI document: no 5xx, no response that breaks its own schema."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from caratflow_client.signing import sign_request


class Signed(requests.auth.AuthBase):
    def __init__(self, key) -> None:
        self.key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(request.url)
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        content_type = request.headers.get("content-type", "")
        # A prepared request's method is set, its header values are text, its body is bytes by now.
        assert request.method is not None
        assert isinstance(content_type, str)
        assert isinstance(body, bytes)
        signature = sign_request(
            key_id=self.key.key_id,
            secret=self.key.secret,
            method=request.method,
            path=url.path,
            query=url.query,
            content_type=content_type,
            body=body,
        )
        request.headers["Authorization"] = signature.header()
        return request


def exercise(op, auth: Signed, statuses: list[int]) -> None:
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=op.as_strategy())
    def run(case) -> None:
        response = case.call(auth=auth)
        statuses.append(response.status_code)
        case.validate_response(response, checks=(not_a_server_error, response_schema_conformance))

    run()


@pytest.mark.slow
def test_no_server_errors_and_responses_match_their_schema(api, search_key, issue_key, catalogue) -> None:
    schema = schemathesis.openapi.from_url(f"{api.url}/api/openapi.json")
    # Operator reads run with an admin key; operator writes with the search key, so they are refused
    # (403, still checked against the schema): this app has no durable client to start runs with.
    admin = Signed(issue_key("schema-admin", ["search", "admin"]))
    failures = []
    statuses: list[int] = []

    for operation in schema.get_all_operations():
        assert isinstance(operation, Ok), operation  # the schema loaded whole
        op = operation.ok()
        operator_read = op.method.upper() == "GET" and op.path.startswith(("/api/v1/runs", "/api/v1/dead-letters"))
        auth = admin if operator_read else Signed(search_key)

        try:
            exercise(op, auth, statuses)
        except Exception as exc:  # noqa: BLE001 - collected, reported all at once below
            failures.append(f"{op.method.upper()} {op.path}: {exc}")
    assert not failures, "\n".join(failures)
    # the generated requests reached the routes, both accepted and refused
    assert 200 in statuses
    assert 400 in statuses
