"""DATABASE_AUTH=entra: each new connection signs in with a managed-identity token as its password,
fetched through the real ManagedIdentityCredential from a transport that answers as the App Service
identity endpoint. (The embedded PostgreSQL trusts local connections, so it cannot check the token
itself; the test checks what the connection was opened with.)"""

from __future__ import annotations

import fake_keyvault
from azure.identity import ManagedIdentityCredential

from shared.db.connect import connect, open_pool


def test_entra_pools_sign_in_with_a_fresh_token_per_connection(settings, database_url, monkeypatch) -> None:
    identity = fake_keyvault.install(monkeypatch)
    entra = settings.model_copy(update={"database_auth": "entra", "db_pool_min_size": 2, "db_pool_max_size": 2})
    pool = open_pool(
        entra, url=database_url, name="entra-test", credential=ManagedIdentityCredential(transport=identity)
    )
    try:
        with pool.connection() as first, pool.connection() as second:
            passwords = {first.info.password, second.info.password}
            assert first.execute("SELECT current_setting('application_name')").fetchone() == ("entra-test",)
    finally:
        pool.close()
    assert passwords <= identity.tokens  # each connection's password is a token the identity issued...
    assert set(identity.token_resources) == {"https://ossrdbms-aad.database.windows.net"}  # ...for PostgreSQL


def test_password_auth_adds_no_password(settings, database_url) -> None:
    with connect(settings, database_url) as conn:
        assert conn.info.password in (None, "")
        assert conn.execute("SELECT current_setting('application_name')").fetchone() == ("caratflow",)
