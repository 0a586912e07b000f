"""Signing in to Azure Database for PostgreSQL with a Microsoft Entra token instead of a password.

With DATABASE_AUTH=entra the password of every new connection is an access token for the managed
identity (DefaultAzureCredential picks it by AZURE_CLIENT_ID). Tokens live about an hour; psycopg_pool
asks for connection arguments per connection (a callable `kwargs`), so a pool never reuses an expired
one, and azure-identity caches the token until shortly before it expires, so asking is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The resource Azure Database for PostgreSQL accepts tokens for.
POSTGRES_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"


def token_password(credential: Any = None) -> Callable[[], str]:
    """A function returning a current token; `credential` (a TokenCredential) defaults to DefaultAzureCredential."""
    if credential is None:
        # Imported here: a laptop with password auth never needs azure-identity loaded.
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()

    def password() -> str:
        token: str = credential.get_token(POSTGRES_SCOPE).token
        return token

    return password
