"""The request signature, one definition for the API and its callers.

A caller sends `Authorization: CF-HMAC-SHA256 key_id=..., timestamp=..., nonce=..., signature=...`,
where signature is the hex HMAC-SHA256, under one of the key's secrets, of:

    CF-HMAC-SHA256
    <timestamp: unix seconds>
    <nonce: 16-64 of [A-Za-z0-9_-], never reused>
    <key_id>
    <METHOD>
    <path: the request target's path exactly as sent (before any decoding), percent-decoded once to
     bytes, then every byte but RFC 3986 unreserved characters and '/' percent-encoded (upper-case hex)>
    <query: each name and value decoded ('+' is a space) then re-encoded the same way, sorted by name
     then value, '&'-joined>
    content-type:<the Content-Type header, trimmed; empty when absent>
    <hex SHA-256 of the raw body bytes>

Decoding once before encoding makes both sides agree however a client or proxy escaped the URL,
while `a%0Ab`, `ab` and `a%2525b` stay three different paths: the API takes the path from the raw
request target, never from an already-decoded one. `signing_vectors.json` beside this file pins the
definition with worked examples for implementers in other languages. The body is hashed as sent,
never re-serialised. The API checks the timestamp both ways, remembers nonces for the tolerance
window and compares in constant time (api/auth.py).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote_to_bytes

SCHEME = "CF-HMAC-SHA256"
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_KEY_ID = re.compile(r"^ck[0-9a-f]{16}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PARAM = re.compile(r"\s*([a-z_]+)=([^,\s]*)\s*(?:,|$)")


@dataclass(frozen=True)
class Signature:
    """The parts of an Authorization header."""

    key_id: str
    timestamp: int
    nonce: str
    signature: str

    def header(self) -> str:
        return (
            f"{SCHEME} key_id={self.key_id}, timestamp={self.timestamp}, nonce={self.nonce}, signature={self.signature}"
        )


class MalformedSignature(ValueError):
    """The Authorization header is not a well-formed caratflow signature."""


def canonical_path(path: str | bytes) -> str:
    """`path` as sent (str or bytes, still percent-encoded), decoded once to bytes and re-encoded."""
    return quote(unquote_to_bytes(path), safe="/-_.~")


def canonical_query(raw_query: str | bytes) -> str:
    if isinstance(raw_query, bytes):
        raw_query = raw_query.decode("latin-1")
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    return "&".join(f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}" for name, value in sorted(pairs))


def string_to_sign(
    *,
    key_id: str,
    timestamp: int,
    nonce: str,
    method: str,
    path: str | bytes,
    query: str | bytes,
    content_type: str,
    body: bytes,
) -> str:
    return "\n".join(
        (
            SCHEME,
            str(timestamp),
            nonce,
            key_id,
            method.upper(),
            canonical_path(path),
            canonical_query(query),
            f"content-type:{content_type.strip()}",
            hashlib.sha256(body).hexdigest(),
        )
    )


def compute(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def sign_request(
    *,
    key_id: str,
    secret: str,
    method: str,
    path: str | bytes,
    query: str | bytes = "",
    content_type: str = "",
    body: bytes = b"",
    timestamp: int | None = None,
    nonce: str | None = None,
) -> Signature:
    """Sign one request; a fresh nonce and the current time unless given."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = nonce or secrets.token_urlsafe(18)
    message = string_to_sign(
        key_id=key_id,
        timestamp=timestamp,
        nonce=nonce,
        method=method,
        path=path,
        query=query,
        content_type=content_type,
        body=body,
    )
    return Signature(key_id, timestamp, nonce, compute(secret, message))


def parse_authorization(value: str) -> Signature:
    """Parse an Authorization header; raise MalformedSignature on anything but the exact format."""
    scheme, _, rest = value.partition(" ")
    if scheme != SCHEME:
        raise MalformedSignature("unknown authorization scheme")
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if not match or match.end() == position:
            raise MalformedSignature("unparseable authorization parameters")
        name, param = match.groups()
        if name in params:
            raise MalformedSignature(f"duplicate parameter {name}")
        params[name] = param
        position = match.end()
    if set(params) != {"key_id", "timestamp", "nonce", "signature"}:
        raise MalformedSignature("expected exactly key_id, timestamp, nonce and signature")
    if not _KEY_ID.match(params["key_id"]):
        raise MalformedSignature("malformed key_id")
    if not params["timestamp"].isdigit() or len(params["timestamp"]) > 12:
        raise MalformedSignature("malformed timestamp")
    if not _NONCE.match(params["nonce"]):
        raise MalformedSignature("malformed nonce")
    if not _HEX64.match(params["signature"]):
        raise MalformedSignature("malformed signature")
    return Signature(params["key_id"], int(params["timestamp"]), params["nonce"], params["signature"])
