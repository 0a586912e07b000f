"""`open_secret_store`: the store the settings name, behind the cache."""

from __future__ import annotations

from pathlib import Path

from shared.config import load_settings
from shared.secrets import LocalSecretStore, open_secret_store


def test_open_secret_store_local_is_the_file_behind_the_cache(tmp_path: Path) -> None:
    settings = load_settings(local_secrets_path=tmp_path / "s.json", secret_cache_ttl_seconds=42)
    store = open_secret_store(settings)
    assert isinstance(store.store, LocalSecretStore)
    assert store.store.path == tmp_path / "s.json"
    assert store.ttl_seconds == 42
    assert store.get("client-34-hmac", store.create_version("client-34-hmac", "v")) == "v"
