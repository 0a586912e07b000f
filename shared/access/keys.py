"""API clients and their keys: issue, rotate, revoke, list, and the record the API checks against.

A key's secret is written to the secret store (Key Vault in Azure) and shown once to whoever issued
it; the database keeps its SHA-256 only. Rotation adds a secret version and gives the older ones an
expiry, so callers can switch within the overlap without a failed request.
"""

from __future__ import annotations

import hashlib
import secrets as random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from shared.secrets import SecretStore

SCOPES = ("search", "admin", "pricing")

KEY_RECORD_SQL = """
SELECT k.key_id, k.client_id, c.scopes, k.secret_name, k.expires_at, coalesce(k.revoked_at, c.revoked_at) AS revoked_at,
       coalesce(json_agg(json_build_object('version', s.secret_version, 'sha256', encode(s.secret_sha256, 'hex'),
                                           'expires_at', s.expires_at) ORDER BY s.created_at DESC)
                FILTER (WHERE s.key_id IS NOT NULL AND (s.expires_at IS NULL OR s.expires_at > now())), '[]')
           AS secrets
FROM api_keys k JOIN api_clients c USING (client_id) LEFT JOIN api_key_secrets s USING (key_id)
WHERE k.key_id = %(key_id)s
GROUP BY k.key_id, c.client_id
"""


@dataclass(frozen=True)
class SecretRef:
    version: str
    sha256: bytes
    expires_at: datetime | None


@dataclass(frozen=True)
class KeyRecord:
    """What checking a request needs to know about its key."""

    key_id: str
    client_id: str
    scopes: frozenset[str]
    secret_name: str
    expires_at: datetime | None
    revoked_at: datetime | None
    secrets: tuple[SecretRef, ...]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> KeyRecord:
        return cls(
            key_id=row["key_id"],
            client_id=row["client_id"],
            scopes=frozenset(row["scopes"]),
            secret_name=row["secret_name"],
            expires_at=row["expires_at"],
            revoked_at=row["revoked_at"],
            secrets=tuple(
                SecretRef(
                    s["version"],
                    bytes.fromhex(s["sha256"]),
                    datetime.fromisoformat(s["expires_at"]) if s["expires_at"] else None,
                )
                for s in row["secrets"]
            ),
        )

    def unusable_reason(self, now: datetime) -> str | None:
        if self.revoked_at is not None and self.revoked_at <= now:
            return "key or client revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "key expired"
        return None

    def active_secrets(self, now: datetime) -> list[SecretRef]:
        return [s for s in self.secrets if s.expires_at is None or s.expires_at > now]


@dataclass(frozen=True)
class IssuedSecret:
    """A secret as shown once to whoever issued it."""

    client_id: str
    key_id: str
    secret: str
    version: str


def _new_secret(store: SecretStore, secret_name: str) -> tuple[str, str, bytes]:
    value = random.token_urlsafe(32)
    version = store.create_version(secret_name, value)
    return value, version, hashlib.sha256(value.encode()).digest()


def create_key(
    pool: ConnectionPool, store: SecretStore, client_id: str, scopes: list[str], *, expires_at: datetime | None = None
) -> IssuedSecret:
    """Issue a key (creating the client, or setting its scopes if it exists)."""
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {SCOPES}, got {scopes}")
    key_id = f"ck{random.token_hex(8)}"
    secret_name = f"caratflow-api-{key_id}"
    value, version, digest = _new_secret(store, secret_name)
    with pool.connection() as conn:
        conn.execute(
            """INSERT INTO api_clients (client_id, scopes) VALUES (%(client)s, %(scopes)s)
               ON CONFLICT (client_id) DO UPDATE SET scopes = EXCLUDED.scopes""",
            {"client": client_id, "scopes": sorted(set(scopes))},
        )
        conn.execute(
            "INSERT INTO api_keys (key_id, client_id, secret_name, expires_at) VALUES (%s, %s, %s, %s)",
            (key_id, client_id, secret_name, expires_at),
        )
        conn.execute(
            "INSERT INTO api_key_secrets (key_id, secret_version, secret_sha256) VALUES (%s, %s, %s)",
            (key_id, version, digest),
        )
    return IssuedSecret(client_id, key_id, value, version)


def rotate_key(pool: ConnectionPool, store: SecretStore, key_id: str, overlap: timedelta) -> IssuedSecret:
    """Add a secret version; the versions before it stop working after `overlap`."""
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT client_id, secret_name FROM api_keys WHERE key_id = %s AND revoked_at IS NULL", (key_id,)
        ).fetchone()
    if row is None:
        raise LookupError(f"no active key {key_id}")
    client_id, secret_name = row
    value, version, digest = _new_secret(store, secret_name)
    with pool.connection() as conn:
        conn.execute(
            """UPDATE api_key_secrets SET expires_at = least(coalesce(expires_at, 'infinity'), now() + %(overlap)s)
               WHERE key_id = %(key)s""",
            {"key": key_id, "overlap": overlap},
        )
        conn.execute(
            "INSERT INTO api_key_secrets (key_id, secret_version, secret_sha256) VALUES (%s, %s, %s)",
            (key_id, version, digest),
        )
    return IssuedSecret(client_id, key_id, value, version)


def revoke_key(pool: ConnectionPool, store: SecretStore, key_id: str) -> None:
    """Revoke at once (the API notices within api_key_cache_seconds) and disable its secret versions."""
    with pool.connection() as conn:
        row = conn.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = %s RETURNING secret_name",
            (key_id,),
        ).fetchone()
        if row is None:
            raise LookupError(f"no key {key_id}")
        versions = [
            v for (v,) in conn.execute("SELECT secret_version FROM api_key_secrets WHERE key_id = %s", (key_id,))
        ]
    for version in versions:
        store.disable_version(row[0], version)


def revoke_client(pool: ConnectionPool, store: SecretStore, client_id: str) -> list[str]:
    """Revoke a client and every key it holds; return the key ids."""
    with pool.connection() as conn:
        found = conn.execute(
            "UPDATE api_clients SET revoked_at = coalesce(revoked_at, now()) WHERE client_id = %s", (client_id,)
        ).rowcount
        if not found:
            raise LookupError(f"no client {client_id}")
        keys = [k for (k,) in conn.execute("SELECT key_id FROM api_keys WHERE client_id = %s", (client_id,))]
    for key_id in keys:
        revoke_key(pool, store, key_id)
    return keys


def list_keys(pool: ConnectionPool) -> list[dict[str, Any]]:
    """Every key with its client, scopes, state and secret versions (never a secret)."""

    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT k.key_id, k.client_id, c.scopes, k.created_at, k.expires_at,
                      coalesce(k.revoked_at, c.revoked_at) AS revoked_at,
                      json_agg(json_build_object('version', s.secret_version, 'created_at', s.created_at,
                                                 'expires_at', s.expires_at) ORDER BY s.created_at) AS secrets
               FROM api_keys k JOIN api_clients c USING (client_id) JOIN api_key_secrets s USING (key_id)
               GROUP BY k.key_id, c.client_id ORDER BY k.client_id, k.created_at""",
        ).fetchall()


def load_key(pool: ConnectionPool, key_id: str) -> KeyRecord | None:

    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(KEY_RECORD_SQL, {"key_id": key_id}).fetchone()
    return KeyRecord.from_row(row) if row else None
