"""schemathesis against the served OpenAPI document: no 5xx, no response that breaks its own schema."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from caratflow_client.signing import sign_request


class Signed(requests.auth.AuthBase):
    def __init__(self, key) -> None:
        self.key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(request.url)
        body = request.body or b""
        signature = sign_request(
            key_id=self.key.key_id,
            secret=self.key.secret,
            method=request.method,
            path=url.path,
            query=url.query,
            content_type=request.headers.get("content-type", ""),
            body=body.encode() if isinstance(body, str) else body,
        )
        request.headers["Authorization"] = signature.header()
        return request


@pytest.mark.slow
def test_no_server_errors_and_responses_match_their_schema(api, search_key, catalogue) -> None:
    schema = schemathesis.openapi.from_url(f"{api.url}/api/openapi.json")
    auth = Signed(search_key)
    failures = []
    statuses: list[int] = []

    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=op.as_strategy())
        def run(case) -> None:
            response = case.call(auth=auth)
            statuses.append(response.status_code)
            case.validate_response(response, checks=(not_a_server_error, response_schema_conformance))

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collected, reported all at once below
            failures.append(f"{op.method.upper()} {op.path}: {exc}")
    assert not failures, "\n".join(failures)
    # the generated requests reached the routes, both accepted and refused
    assert 200 in statuses
    assert 400 in statuses
