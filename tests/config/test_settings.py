"""Settings: environment, local.settings.json, validation that names the setting, the documented sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.config import ConfigError, Settings, load_settings

SAMPLE = Path(__file__).resolve().parents[2] / "local.settings.sample.json"


@pytest.fixture
def local_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "local.settings.json"
    monkeypatch.setenv("CARATFLOW_LOCAL_SETTINGS", str(path))

    def write(values: dict[str, str]) -> None:
        path.write_text(json.dumps({"IsEncrypted": False, "Values": values}))

    return write


def test_reads_local_settings_values(local_settings) -> None:
    local_settings({"FEED_RATE_LIMIT_PER_SECOND": "12.5", "NIVODA_TOKEN_MODE": "wrapper", "AzureWebJobsStorage": "x"})
    settings = load_settings()
    assert settings.feed_rate_limit_per_second == 12.5
    assert settings.nivoda_token_mode == "wrapper"


def test_environment_wins_over_local_settings(local_settings, monkeypatch: pytest.MonkeyPatch) -> None:
    local_settings({"PLAN_MAX_PARTITIONS": "10"})
    monkeypatch.setenv("PLAN_MAX_PARTITIONS", "20")
    assert load_settings().plan_max_partitions == 20


def test_empty_local_value_means_unset(local_settings) -> None:
    local_settings({"DATABASE_URL": "", "PLAN_MAX_PARTITIONS": ""})
    settings = load_settings()
    assert settings.database_url is None
    assert settings.plan_max_partitions == Settings.model_fields["plan_max_partitions"].default


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FEED_PAGE_SIZE", "51"),
        ("FEED_RATE_LIMIT_PER_SECOND", "-1"),
        ("NIVODA_TOKEN_MODE", "cookie"),
        ("NIVODA_ENDPOINT", "ftp://feed"),
        ("DB_POOL_MAX_SIZE", "many"),
    ],
)
def test_invalid_value_stops_startup_naming_the_setting(local_settings, name: str, value: str) -> None:
    local_settings({name: value})
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_inconsistent_settings_are_refused(local_settings) -> None:
    local_settings({"SCAN_STORE": "blob"})
    with pytest.raises(ConfigError, match="scan_blob_connection_string"):
        load_settings()


def test_broken_local_settings_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text("{not json")
    monkeypatch.setenv("CARATFLOW_LOCAL_SETTINGS", str(path))
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_settings()


def test_secrets_do_not_print() -> None:
    settings = load_settings(database_url="postgresql://u:hunter2@db/x", nivoda_password="s3cret-pw")
    assert "hunter2" not in repr(settings)
    assert "s3cret-pw" not in repr(settings)


def test_sample_documents_every_setting() -> None:
    sample = json.loads(SAMPLE.read_text())
    values, docs = sample["Values"], sample["Docs"]
    ours = {name.upper() for name in Settings.model_fields}
    assert ours <= set(values), f"missing from Values: {ours - set(values)}"
    assert set(values) == set(docs), "every sample value needs a Docs line and vice versa"
    assert all(docs[name].strip() for name in docs)


def test_sample_values_are_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(SAMPLE.read_text())
    monkeypatch.setenv("CARATFLOW_LOCAL_SETTINGS", str(path))
    assert load_settings().nivoda_username == "emulator@caratflow.test"


def test_the_settings_sample_holds_no_secret_value() -> None:
    """Every secret setting is empty in the sample, except the feed password, which is the emulator's
    published default (emulator/config.py): what a laptop run signs in to the local emulator with."""
    import json
    import typing

    from pydantic import SecretStr

    from emulator.config import EmulatorConfig
    from shared.config import PROJECT_ROOT, Settings

    values = json.loads((PROJECT_ROOT / "local.settings.sample.json").read_text())["Values"]
    secret_fields = [
        name
        for name, field in Settings.model_fields.items()
        if field.annotation is SecretStr or SecretStr in typing.get_args(field.annotation)
    ]
    assert "api_metrics_token" in secret_fields  # the scan sees the secrets it is meant to see
    allowed = {"nivoda_password": EmulatorConfig().password.get_secret_value()}
    for name in secret_fields:
        assert values[name.upper()] in ("", allowed.get(name)), f"{name.upper()} holds a value in the sample"
