"""`CaratflowClient`: search the catalogue over signed requests (httpx)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import httpx

from caratflow_client.signing import sign_request


class CaratflowAuth(httpx.Auth):
    """Signs each request as it is sent, over its final URL and body bytes."""

    requires_request_body = True

    def __init__(self, key_id: str, secret: str) -> None:
        self.key_id = key_id
        self._secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        signature = sign_request(
            key_id=self.key_id,
            secret=self._secret,
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            content_type=request.headers.get("content-type", ""),
            body=request.content,
        )
        request.headers["Authorization"] = signature.header()
        yield request


class CaratflowClient:
    """The search API, one method per route. Raises httpx.HTTPStatusError on 4xx/5xx (body: problem+json)."""

    def __init__(self, base_url: str, key_id: str, secret: str, *, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=base_url, auth=CaratflowAuth(key_id, secret), timeout=timeout)

    def __enter__(self) -> CaratflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def search(self, **params: Any) -> dict[str, Any]:
        """One page of `GET /api/v1/diamonds`; list values become repeated parameters."""
        return self._get("/api/v1/diamonds", params)

    def iter_search(self, **params: Any) -> Iterator[dict[str, Any]]:
        """Every matching diamond, page after page, following the cursors."""
        while True:
            page = self.search(**params)
            yield from page["data"]
            cursor = page["page"]["next_cursor"]
            if cursor is None:
                return
            params = {**params, "cursor": cursor}

    def diamond(self, diamond_id: str) -> dict[str, Any]:
        return self._get(f"/api/v1/diamonds/{diamond_id}", {})

    def price_history(self, diamond_id: str) -> dict[str, Any]:
        return self._get(f"/api/v1/diamonds/{diamond_id}/price-history", {})

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        response = self.http.get(path, params={k: v for k, v in params.items() if v is not None})
        response.raise_for_status()
        return response.json()
