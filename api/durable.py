"""Which durable client an operator route talks to: the Functions binding in Azure, the local host's
client under `caratflow serve`. Route code is the same for both (the local client answers the same
async methods as the SDK's DurableOrchestrationClient)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from api.auth import state_of
from api.functions import durable_client
from api.problems import Problem


def _client(request: Request) -> Any:
    client = durable_client.get() or state_of(request).durable
    if client is None:
        raise Problem(
            503,
            "no-durable-client",
            "Orchestrations unavailable",
            "This API process has no durable client: it runs neither under the Functions host nor with a local host.",
            "Run `caratflow serve` without --no-local-host, or call the API deployed to Azure.",
        )
    return client


DurableClient = Annotated[Any, Depends(_client)]
