"""Server keys: HMAC keys only the API holds, for tokens it issues and later takes back (cursors,
media links).

The table and its rotation rule are in migration 0009: the newest key signs, the `VERIFYING` newest
verify, so one rotation never breaks a token issued a moment before it.

A token is `<key version>.<base64url payload>.<base64url MAC>` (`ServerKeys.seal`). The MAC covers a
purpose label and the payload, so a token minted for one purpose (a cursor) is never accepted for
another (a media link), whatever its payload looks like.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

import psycopg

from shared.db.rows import one

VERIFYING = 2
TAG_BYTES = 16  # HMAC-SHA256 truncated to 128 bits: forging one takes ~2^128 tries
MAX_TOKEN_CHARS = 2048
# ASCII only and canonical: Python's int() takes other scripts' digits and base64 skips stray
# characters, so without this many strings would decode to one token.
_TOKEN = re.compile(r"([0-9]{1,9})\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]+)")
LOAD_SQL = "SELECT key_version, secret FROM api_server_keys ORDER BY key_version DESC LIMIT 2"  # VERIFYING


@dataclass(frozen=True)
class ServerKeys:
    """The keys that verify, newest first."""

    keys: tuple[tuple[int, bytes], ...]

    @classmethod
    def from_rows(cls, rows: list[tuple[int, bytes]]) -> ServerKeys:
        if not rows:
            raise LookupError("api_server_keys is empty; migration 0009 creates the first key")
        return cls(tuple((version, bytes(secret)) for version, secret in rows))

    @property
    def signing_version(self) -> int:
        return self.keys[0][0]

    def tag(self, message: bytes, version: int | None = None) -> bytes:
        """The MAC of `message` under `version` (default: the signing key); KeyError if it no longer verifies."""
        secret = dict(self.keys)[self.signing_version if version is None else version]
        return hmac.new(secret, message, hashlib.sha256).digest()[:TAG_BYTES]

    def verify(self, message: bytes, version: int, tag: bytes) -> bool:
        try:
            expected = self.tag(message, version)
        except KeyError:
            return False  # signed by a key rotated out (or never ours)
        return hmac.compare_digest(expected, tag)

    def seal(self, purpose: bytes, payload: bytes) -> str:
        """A token carrying `payload` that only these keys can have made."""
        version = self.signing_version
        return f"{version}.{_b64(payload)}.{_b64(self.tag(_labelled(purpose, payload), version))}"

    def unseal(self, purpose: bytes, token: str) -> bytes:
        """The payload of a token `seal` made for `purpose`; InvalidToken (MalformedToken) for anything else."""
        match = _TOKEN.fullmatch(token) if len(token) <= MAX_TOKEN_CHARS else None
        if match is None:
            raise MalformedToken("malformed")
        try:
            payload, tag = _unb64(match[2]), _unb64(match[3])
        except (ValueError, binascii.Error) as exc:
            raise MalformedToken("malformed") from exc
        if _b64(payload) != match[2] or _b64(tag) != match[3]:
            raise MalformedToken("malformed")  # unused trailing bits set: another spelling of a token
        if not self.verify(_labelled(purpose, payload), int(match[1]), tag):
            raise InvalidToken("not issued by these keys")
        return payload


class InvalidToken(ValueError):
    """Not a token these keys sealed for this purpose (malformed, forged, edited or rotated out)."""


class MalformedToken(InvalidToken):
    """Not even shaped like a token."""


def _labelled(purpose: bytes, payload: bytes) -> bytes:
    return purpose + b"\x00" + payload


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def load_async(conn: psycopg.AsyncConnection) -> ServerKeys:
    return ServerKeys.from_rows(await (await conn.execute(LOAD_SQL)).fetchall())


def load(conn: psycopg.Connection) -> ServerKeys:
    return ServerKeys.from_rows(conn.execute(LOAD_SQL).fetchall())


def rotate(conn: psycopg.Connection) -> int:
    """Add a signing key; the previous one still verifies until the next rotation. Returns its version."""
    (version,) = one(conn.execute("INSERT INTO api_server_keys DEFAULT VALUES RETURNING key_version").fetchone())
    key_version: int = version
    return key_version
