"""A small Python client for the caratflow search API: signs every request (see `signing`)."""

from caratflow_client.client import CaratflowAuth, CaratflowClient
from caratflow_client.signing import SCHEME, Signature, sign_request

__all__ = ["SCHEME", "CaratflowAuth", "CaratflowClient", "Signature", "sign_request"]
