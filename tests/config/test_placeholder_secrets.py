"""Outside local development (the feed not on this machine) start-up refuses a placeholder secret:
the emulator's password, what samples put where a secret goes, an unresolved Key Vault reference."""

from __future__ import annotations

import json

import pytest

from shared.config import PROJECT_ROOT, ConfigError, Settings, load_settings

REMOTE_FEED = "https://integrations.nivoda.net/api/diamonds"
REAL = {"nivoda_endpoint": REMOTE_FEED, "nivoda_password": "k3Fq-real-feed-password"}


@pytest.mark.parametrize(
    "endpoint",
    ["http://127.0.0.1:4100/api/diamonds", "http://localhost:4100/api/diamonds", "http://[::1]:4100/api/diamonds"],
)
def test_the_feed_on_this_machine_is_local_development(endpoint: str) -> None:
    settings = load_settings(nivoda_endpoint=endpoint)  # the emulator's password is accepted here
    assert settings.local_development


def test_the_emulator_password_is_refused_for_a_remote_feed() -> None:
    assert not load_settings(**REAL).local_development
    with pytest.raises(ConfigError, match="NIVODA_PASSWORD is empty or a placeholder") as refused:
        load_settings(nivoda_endpoint=REMOTE_FEED)
    assert "emulator-password" not in str(refused.value)  # a secret, even a public one, is never echoed
    assert "not local development" in str(refused.value)


@pytest.mark.parametrize("value", ["", "  ", "changeme", "CHANGEME", "password", "<your feed password>", "xxx"])
def test_placeholders_are_refused_for_a_remote_feed(value: str) -> None:
    with pytest.raises(ConfigError, match="NIVODA_PASSWORD"):
        load_settings(**{**REAL, "nivoda_password": value})


def test_every_secret_setting_is_checked() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(
            **REAL,
            api_metrics_token="changeme",
            database_url="postgresql://caratflow:changeme@db.example.com/caratflow",
            scan_blob_connection_string="UseDevelopmentStorage=true",
        )
    message = str(refused.value)
    assert "API_METRICS_TOKEN is empty or a placeholder" in message
    assert "the password in DATABASE_URL is empty or a placeholder" in message
    assert "SCAN_BLOB_CONNECTION_STRING is Azurite's published development account" in message
    assert "changeme@" not in message


def test_an_unresolved_key_vault_reference_is_named_as_such() -> None:
    reference = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/nivoda-password/)"
    with pytest.raises(ConfigError, match="unresolved Key Vault reference"):
        load_settings(**{**REAL, "nivoda_password": reference})


def test_real_secrets_and_a_password_free_database_url_pass() -> None:
    settings = load_settings(
        **REAL,
        database_url="host=db.example.com dbname=caratflow user=caratflow-identity sslmode=require",
        api_metrics_token="Jx9-prometheus-bearer",
    )
    assert not settings.local_development


def test_every_secret_the_sample_holds_is_refused_outside_local_development() -> None:
    """The sample's values are for a laptop: copied to a deployment, start-up stops."""
    values = json.loads((PROJECT_ROOT / "local.settings.sample.json").read_text())["Values"]
    secrets = {
        name: values[name.upper()]
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation) and values[name.upper()]
    }
    assert secrets == {"nivoda_password": "emulator-password"}  # what the scan is about
    for name, value in secrets.items():
        with pytest.raises(ConfigError, match=name.upper()):
            load_settings(**{**REAL, name: value})
