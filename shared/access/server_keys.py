"""Server keys: HMAC keys only the API holds, for tokens it issues and later takes back (cursors).

The table and its rotation rule are in migration 0009: the newest key signs, the `VERIFYING` newest
verify, so one rotation never breaks a token issued a moment before it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import psycopg

VERIFYING = 2
TAG_BYTES = 16  # HMAC-SHA256 truncated to 128 bits: forging one takes ~2^128 tries
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


async def load_async(conn: psycopg.AsyncConnection) -> ServerKeys:
    return ServerKeys.from_rows(await (await conn.execute(LOAD_SQL)).fetchall())


def load(conn: psycopg.Connection) -> ServerKeys:
    return ServerKeys.from_rows(conn.execute(LOAD_SQL).fetchall())


def rotate(conn: psycopg.Connection) -> int:
    """Add a signing key; the previous one still verifies until the next rotation. Returns its version."""
    (version,) = conn.execute("INSERT INTO api_server_keys DEFAULT VALUES RETURNING key_version").fetchone()
    return version
