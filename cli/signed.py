"""Commands that work through the signed API (`caratflow admin`, `caratflow pricing`): the client from the
environment (CARATFLOW_API_URL, CARATFLOW_KEY_ID, CARATFLOW_API_SECRET), the call, its answer printed as
JSON, and a refusal printed as the problem the API answered with."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import httpx

from caratflow_client.client import CaratflowClient


def through_api(
    call: Callable[[CaratflowClient], Any], *, command: str, local_errors: tuple[type[Exception], ...] = ()
) -> tuple[int, Any]:
    """(exit code, answer): 0 and the answer (printed), 1 for an HTTP refusal, 2 for a missing key setting
    or one of `local_errors` (e.g. a file the command could not read)."""
    try:
        client = CaratflowClient.from_environment()
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2, None
    with client:
        try:
            result = call(client)
        except httpx.HTTPStatusError as exc:
            print(f"HTTP {exc.response.status_code}: {exc.response.text}", file=sys.stderr)
            return 1, None
        except local_errors as exc:
            print(f"{command}: {exc}", file=sys.stderr)
            return 2, None
    if result is not None:
        print(json.dumps(result, indent=2, default=str))
    return 0, result
