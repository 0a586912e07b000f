"""`CaratflowClient`: search the catalogue over signed requests (httpx)."""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Iterator, Mapping
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
            # The path as it goes on the wire (url.path would be decoded already).
            path=request.url.raw_path.split(b"?", 1)[0],
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

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> CaratflowClient:
        """A client from CARATFLOW_API_URL, CARATFLOW_KEY_ID and CARATFLOW_API_SECRET (never arguments:
        they would land in shell history and process listings). KeyError names what is missing."""
        missing = [name for name in ("CARATFLOW_KEY_ID", "CARATFLOW_API_SECRET") if not environ.get(name)]
        if missing:
            raise KeyError(f"set {' and '.join(missing)}")
        url = environ.get("CARATFLOW_API_URL", "http://127.0.0.1:7071")
        return cls(url, environ["CARATFLOW_KEY_ID"], environ["CARATFLOW_API_SECRET"])

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

    # --- operator routes (admin scope) ---

    def runs(self, **params: Any) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self._get("/api/v1/runs", params)["data"]
        return runs

    def run(self, run_id: str) -> dict[str, Any]:
        """The run with its partitions and totals."""
        return self._get(f"/api/v1/runs/{run_id}", {})

    def start_run(self, feed: str, kind: str = "full") -> dict[str, Any]:
        return self._post("/api/v1/runs", {"feed": feed, "kind": kind})

    def replay_run(self, run_id: str) -> dict[str, Any]:
        """Fetch a finished run's open dead-lettered partitions again, into that run."""
        return self._post(f"/api/v1/runs/{run_id}/replay", None)

    def cancel_run(self, run_id: str, reason: str = "cancelled by an operator") -> dict[str, Any]:
        return self._post(f"/api/v1/runs/{run_id}/cancel", {"reason": reason})

    def resume_run(self, run_id: str) -> dict[str, Any]:
        return self._post(f"/api/v1/runs/{run_id}/resume", None)

    def run_events(self, run_id: str, **params: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event, data) pairs from the run's server-sent event stream, until it ends."""
        return self._events(f"/api/v1/runs/{run_id}/events", params)

    def dead_letters(self, **params: Any) -> list[dict[str, Any]]:
        letters: list[dict[str, Any]] = self._get("/api/v1/dead-letters", params)["data"]
        return letters

    def replay_dead_letter(self, letter_id: str) -> dict[str, Any]:
        return self._post(f"/api/v1/dead-letters/{letter_id}/replay", None)

    def purge_dead_letter(self, letter_id: str) -> dict[str, Any]:
        response = self.http.delete(f"/api/v1/dead-letters/{letter_id}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    # --- pricing routes (pricing scope) ---

    def pricing_sets(self, status: str | None = None) -> list[dict[str, Any]]:
        sets: list[dict[str, Any]] = self._get("/api/v1/pricing/sets", {"status": status})["data"]
        return sets

    def pricing_set(self, version: int) -> dict[str, Any]:
        """A rule set with its defaults and rules."""
        return self._get(f"/api/v1/pricing/sets/{version}", {})

    def create_pricing_set(self, content: dict[str, Any] | None = None) -> dict[str, Any]:
        """A new draft holding `content` ({note, defaults, rules}; empty if None)."""
        return self._post("/api/v1/pricing/sets", content or {})

    def copy_pricing_set(self, version: int, note: str | None = None) -> dict[str, Any]:
        return self._post(f"/api/v1/pricing/sets/{version}/copy", {} if note is None else {"note": note})

    def edit_pricing_set(
        self, version: int, content: dict[str, Any], *, revision: int | None = None, comment: str = ""
    ) -> dict[str, Any]:
        """Replace a draft's note, defaults and rules; `revision` refuses the edit (412) if it changed since."""
        headers = {} if revision is None else {"If-Match": f'"{revision}"'}
        body = {**content, "comment": comment} if comment else content
        response = self.http.put(f"/api/v1/pricing/sets/{version}", json=body, headers=headers)
        return self._json(response)

    def delete_pricing_set(self, version: int, comment: str = "") -> dict[str, Any]:
        params = {"comment": comment} if comment else {}
        return self._json(self.http.delete(f"/api/v1/pricing/sets/{version}", params=params))

    def validate_pricing_set(self, version: int) -> dict[str, Any]:
        """{pricing_version, valid, findings}."""
        return self._get(f"/api/v1/pricing/sets/{version}/validation", {})

    def preview_pricing_set(self, version: int, largest: int | None = None) -> dict[str, Any]:
        return self._get(f"/api/v1/pricing/sets/{version}/preview", {"largest": largest})

    def activate_pricing_set(self, version: int, comment: str) -> dict[str, Any]:
        """Start the repricing job that activates a draft; the job."""
        return self._post(f"/api/v1/pricing/sets/{version}/activate", {"comment": comment})

    def revert_pricing_set(self, version: int, comment: str) -> dict[str, Any]:
        """Start the repricing job that makes a retired set active again; the job."""
        return self._post(f"/api/v1/pricing/sets/{version}/revert", {"comment": comment})

    def repricing_jobs(self, limit: int | None = None) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = self._get("/api/v1/pricing/jobs", {"limit": limit})["data"]
        return jobs

    def repricing_job(self, job_id: str) -> dict[str, Any]:
        return self._get(f"/api/v1/pricing/jobs/{job_id}", {})

    def repricing_job_events(self, job_id: str, **params: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event, data) pairs from the job's server-sent event stream, until it ends."""
        return self._events(f"/api/v1/pricing/jobs/{job_id}/events", params)

    def cancel_repricing_job(self, job_id: str) -> dict[str, Any]:
        return self._post(f"/api/v1/pricing/jobs/{job_id}/cancel", None)

    def resume_repricing_job(self, job_id: str) -> dict[str, Any]:
        return self._post(f"/api/v1/pricing/jobs/{job_id}/resume", None)

    def pricing_audit(self, **filters: Any) -> list[dict[str, Any]]:
        """Audit entries, newest first: filters version, action, actor, since, until, before, limit."""
        entries: list[dict[str, Any]] = self._get("/api/v1/pricing/audit", filters)["data"]
        return entries

    def quote(
        self, *, diamond_id: str | None = None, stone: dict[str, Any] | None = None, pricing_version: int | None = None
    ) -> dict[str, Any]:
        """The price of a catalogue stone (diamond_id) or a hypothetical one (stone) under a version."""
        body = {"diamond_id": diamond_id, "stone": stone, "pricing_version": pricing_version}
        return self._post("/api/v1/pricing/quote", {k: v for k, v in body.items() if v is not None})

    def _events(self, path: str, params: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        with self.http.stream("GET", path, params=params, timeout=None) as response:
            response.raise_for_status()
            kind, data = "message", []
            for line in response.iter_lines():
                if line.startswith(":"):
                    continue  # a keep-alive comment
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif not line and data:
                    yield kind, json.loads("\n".join(data))
                    kind, data = "message", []

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        response = self.http.get(path, params={k: v for k, v in params.items() if v is not None})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def _post(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        response = self.http.post(path, json=body) if body is not None else self.http.post(path)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result
