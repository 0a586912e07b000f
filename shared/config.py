"""caratflow's settings: one `Settings`, read from the environment and `local.settings.json`.

In Azure every setting is an app setting (an environment variable). Locally the same names are read
from the `Values` object of `local.settings.json` (the Functions convention), with the environment
taking precedence. Every setting is documented in `local.settings.sample.json`; a test keeps the two
in step.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterator
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import psycopg
from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from shared.notify.targets import WebhookTarget

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_SETTINGS_ENV = "CARATFLOW_LOCAL_SETTINGS"


# What stands in for a secret in samples, templates and docs, and the feed emulator's published password
# (the only secret local.settings.sample.json holds). Compared case-insensitively, surrounding blanks ignored.
PLACEHOLDER_SECRETS = frozenset(
    {"", "emulator-password", "changeme", "change-me", "change_me", "replace-me", "password", "secret", "todo", "xxx"}
)


class ConfigError(Exception):
    """Start-up stops here: a setting is missing or invalid. The message names every bad setting."""


class LocalSettingsSource(PydanticBaseSettingsSource):
    """The `Values` object of local.settings.json (path from CARATFLOW_LOCAL_SETTINGS, else the project root)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = Path(os.environ.get(LOCAL_SETTINGS_ENV) or PROJECT_ROOT / "local.settings.json")
        self._values = _read_values(path)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name.upper()), field_name, False

    def __call__(self) -> dict[str, Any]:
        known = {name.upper(): name for name in self.settings_cls.model_fields}
        # Values also carries Functions-host settings (AzureWebJobsStorage, FUNCTIONS_WORKER_RUNTIME...)
        # that are not ours; those are left to the host, ours are matched case-insensitively.
        return {known[key.upper()]: value for key, value in self._values.items() if key.upper() in known}


def _read_values(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    values = document.get("Values", {}) if isinstance(document, dict) else None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: 'Values' must be a JSON object")
    # The Functions host treats every value as a string; empty means unset.
    return {key: value for key, value in values.items() if value != ""}


def _json_text(value: Any) -> Any:
    """A structured setting arrives as JSON text (app settings are strings); parsed values pass through."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value) if value.strip() else []
    except json.JSONDecodeError as exc:
        # Position only: the text may hold secrets (webhook URLs).
        raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None


class Settings(BaseSettings):
    """Every knob caratflow reads. Field names are the setting names (upper-cased in the environment)."""

    # hide_input_in_errors: a validation error's text would otherwise repeat values, secrets included.
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True, hide_input_in_errors=True)

    # --- database
    database_url: SecretStr | None = Field(
        default=None, description="PostgreSQL URL; unset means the embedded PostgreSQL (pgserver)."
    )
    embedded_pg_dir: Path = Field(
        default=PROJECT_ROOT / ".caratflow" / "pgdata",
        description="Data folder of the embedded PostgreSQL, kept between runs.",
    )
    database_auth: Literal["password", "entra"] = Field(
        default="password",
        description="entra: sign in with the managed identity's Entra token (Azure); password: DATABASE_URL as is.",
    )
    db_pool_min_size: int = Field(default=1, ge=0, le=100)
    db_pool_max_size: int = Field(default=10, ge=1, le=200)
    db_pool_timeout_seconds: float = Field(
        default=1.0, gt=0, le=60, description="Longest wait for a pooled connection before giving up (503 in the API)."
    )
    db_connect_timeout_seconds: int = Field(
        default=3, ge=1, le=60, description="Longest wait to open one database connection."
    )

    # --- supplier feed (Nivoda)
    nivoda_endpoint: str = Field(
        default="http://127.0.0.1:4100/api/diamonds",
        pattern=r"^https?://",
        description="GraphQL endpoint URL. On this machine (127.0.0.1, localhost, ::1: the feed emulator) the"
        " settings are local development, the only place a placeholder secret is accepted.",
    )
    nivoda_username: str = Field(default="emulator@caratflow.test", min_length=1)
    nivoda_password: SecretStr = Field(
        default=SecretStr("emulator-password"),
        description="The default is the feed emulator's password: refused unless the feed is on this machine.",
    )
    nivoda_token_mode: Literal["header", "wrapper"] = Field(
        default="header", description="Bearer header, or the as(token:) wrapper field."
    )
    feed_rate_limit_per_second: float = Field(
        default=25.0, gt=0, le=1000, description="One outbound request budget shared by every fetcher and process."
    )
    feed_timeout_seconds: float = Field(default=45.0, gt=0, le=600)
    feed_max_attempts: int = Field(default=6, ge=1, le=50)
    feed_backoff_base_seconds: float = Field(default=1.0, ge=0, le=60)
    feed_backoff_max_seconds: float = Field(default=20.0, ge=0, le=600)
    feed_token_refresh_margin_seconds: int = Field(default=300, ge=0, le=6 * 3600)
    feed_token_ttl_seconds: int = Field(
        default=6 * 3600, ge=60, description="Assumed token lifetime (the feed does not say; Nivoda's FAQ: 6 h)."
    )
    feed_page_size: int = Field(default=50, ge=1, le=50, description="Items per page; the feed allows at most 50.")

    # --- planning
    plan_target_partition_size: int = Field(default=5000, ge=1)
    plan_max_partitions: int = Field(default=200, ge=1, le=10_000)
    plan_scan_concurrency: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Count queries in flight during a density scan (the budget still caps the rate).",
    )
    scan_store: Literal["local", "blob"] = Field(default="local")
    scan_store_dir: Path = Field(default=PROJECT_ROOT / ".caratflow" / "scans")
    scan_blob_container: str = Field(default="caratflow-scans", pattern=r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")
    scan_blob_connection_string: SecretStr | None = Field(
        default=None, description="Blob connection string (Azurite locally); else scan_blob_account_url."
    )
    scan_blob_account_url: str | None = Field(
        default=None, pattern=r"^https?://", description="Blob account URL reached with managed identity."
    )
    scan_max_age_hours: float = Field(default=24.0, gt=0, description="Incremental runs reuse a scan this fresh.")

    # --- sync runs
    sync_batch_size: int = Field(default=50, ge=1, le=500, description="Partitions per fetch sub-orchestration.")
    sync_min_success_share: float = Field(
        default=0.9, ge=0, le=1, description="Consolidate when at least this share of partitions was fetched."
    )
    sync_max_pages_per_partition: int = Field(default=5000, ge=1)
    sync_consolidators: int = Field(default=2, ge=1, le=32, description="Consolidation workers per run.")
    sync_consolidation_batch: int = Field(default=2000, ge=1, le=50_000)
    sync_consolidation_lease_seconds: float = Field(default=10, gt=0, le=600)
    sync_consolidation_slice_seconds: float = Field(
        default=120, gt=0, description="A consolidation activity returns after this long; the orchestrator calls again."
    )
    sync_fetch_attempts: int = Field(default=4, ge=1, le=20, description="Durable retries of a partition fetch.")
    sync_fetch_retry_first_seconds: float = Field(default=30, gt=0)

    # --- plausibility: a feed item outside these bounds is rejected with its reason, never sold
    plausible_carats_min: Decimal = Field(default=Decimal("0.01"), gt=0, le=10)
    plausible_carats_max: Decimal = Field(default=Decimal("100"), gt=0, le=10_000)
    plausible_price_per_carat_min_cents: int = Field(
        default=1_000, ge=1, description="Lowest believable supplier price per carat, in cents ($10/ct)."
    )
    plausible_price_per_carat_max_cents: int = Field(
        default=500_000_000, ge=1, description="Highest believable supplier price per carat, in cents ($5M/ct)."
    )
    mapped_text_max_chars: int = Field(
        default=200, ge=16, le=2000, description="Longest grade or description text a stone may carry."
    )
    mapped_url_max_chars: int = Field(default=2048, ge=64, le=8000, description="Longest media or certificate URL.")

    # --- secrets: the HMAC secrets of API keys (Key Vault in Azure, a local file on a laptop)
    secret_store: Literal["local", "keyvault"] = Field(default="local")
    key_vault_url: str | None = Field(
        default=None, pattern=r"^https://", description="Vault URL, reached with the app's managed identity."
    )
    local_secrets_path: Path = Field(
        default=PROJECT_ROOT / ".caratflow" / "secrets.json",
        description="The local secret store (file mode 0600); never used in Azure.",
    )
    secret_cache_ttl_seconds: float = Field(
        default=300, ge=0, le=86_400, description="How long a secret read from the store is reused."
    )

    # --- search API
    api_host: str = Field(default="127.0.0.1", description="Where `caratflow serve` listens.")
    api_port: int = Field(default=7071, ge=1, le=65_535)
    api_public_url: str | None = Field(
        default=None, pattern=r"^https?://", description="Base URL callers use; printed in examples."
    )
    api_signature_tolerance_seconds: int = Field(
        default=300, ge=5, le=3600, description="A signed request's timestamp may be this far off, either way."
    )
    api_max_body_bytes: int = Field(default=65_536, ge=1024, le=10_485_760)
    api_max_request_line_bytes: int = Field(
        default=8192, ge=256, le=65_536, description="Longer request lines (method, target) get 414 under `serve`."
    )
    api_max_header_bytes: int = Field(
        default=16_384, ge=1024, le=1_048_576, description="Larger header blocks get 431 under `serve`."
    )
    api_max_headers: int = Field(default=100, ge=8, le=1000, description="More header fields get 431 under `serve`.")
    api_header_timeout_seconds: float = Field(
        default=10, gt=0, le=300, description="A connection whose request head takes longer is closed (`serve`)."
    )
    api_page_size_default: int = Field(default=50, ge=1, le=1000)
    api_page_size_max: int = Field(default=200, ge=1, le=1000)
    api_count_cap: int = Field(
        default=10_000, ge=100, le=10_000_000, description="Counts are exact up to this, estimated beyond."
    )
    api_search_rate_per_minute: int = Field(default=600, ge=1, description="Per client, across every instance.")
    api_search_burst: int = Field(default=60, ge=1)
    api_mutation_rate_per_minute: int = Field(default=60, ge=1, description="Per client, across every instance.")
    api_mutation_burst: int = Field(default=10, ge=1)
    api_auth_failures_per_minute: int = Field(
        default=10, ge=1, description="Failed authentications allowed per client and per IP."
    )
    api_auth_failure_burst: int = Field(default=20, ge=1)
    api_key_cache_seconds: float = Field(
        default=5, ge=0, le=300, description="Key records are reused this long: the bound on revocation delay."
    )
    api_cors_origins: str = Field(default="", description="Comma-separated origins allowed by CORS; empty: none.")
    api_trust_forwarded_for: bool = Field(
        default=False, description="Take the client IP from X-Forwarded-For (set behind Azure's front ends)."
    )
    api_answer_cache_mb: int = Field(
        default=32, ge=0, le=4096, description="Search answers kept per process and dataset version; 0: off."
    )
    api_metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token for /api/metrics (Prometheus); unset: no metrics route."
    )

    # --- notifications: webhooks and their delivery
    notify_webhooks: Annotated[tuple[WebhookTarget, ...], NoDecode, BeforeValidator(_json_text)] = Field(
        default=(), description="JSON list of {name, url, format: slack|teams, events: [event kinds]}."
    )
    notify_max_attempts: int = Field(default=8, ge=1, le=50, description="Attempts per delivery before it gives up.")
    notify_backoff_base_seconds: float = Field(default=30, ge=0, le=3600)
    notify_backoff_max_seconds: float = Field(default=1800, ge=0, le=86_400)
    notify_timeout_seconds: float = Field(default=10, gt=0, le=120)

    # --- retention (a daily sweep in bounded batches)
    retention_batch_size: int = Field(default=1000, ge=1, le=100_000, description="Rows per delete transaction.")
    retention_time_budget_seconds: float = Field(default=240, gt=0, le=3600)
    retention_raw_days: int = Field(default=30, ge=1, description="Raw rows of stones not seen since; feed rejects.")
    retention_run_days: int = Field(default=90, ge=1, description="Finished runs with their partitions.")
    retention_price_history_days: int = Field(default=365, ge=1, description="The latest entry per stone stays.")
    retention_delisted_days: int = Field(default=180, ge=1, description="Delisted diamonds and their price history.")
    retention_notification_days: int = Field(default=30, ge=1, description="Finished notification deliveries.")
    retention_orchestration_days: int = Field(default=30, ge=1, description="Finished orchestration history.")

    @field_validator("api_metrics_token", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # An empty token in a settings file means "no metrics route", never "the empty string opens it".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("notify_webhooks")
    @classmethod
    def _unique_target_names(cls, targets: tuple[WebhookTarget, ...]) -> tuple[WebhookTarget, ...]:
        names = [target.name for target in targets]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"webhook names must be unique; repeated: {', '.join(repeated)}")
        return targets

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        if self.plausible_carats_min >= self.plausible_carats_max:
            raise ValueError("plausible_carats_min must be below plausible_carats_max")
        if self.plausible_price_per_carat_min_cents >= self.plausible_price_per_carat_max_cents:
            raise ValueError("plausible_price_per_carat_min_cents must be below plausible_price_per_carat_max_cents")
        if self.db_pool_min_size > self.db_pool_max_size:
            raise ValueError("db_pool_min_size must not exceed db_pool_max_size")
        if self.feed_backoff_base_seconds > self.feed_backoff_max_seconds:
            raise ValueError("feed_backoff_base_seconds must not exceed feed_backoff_max_seconds")
        if self.scan_store == "blob" and not (self.scan_blob_connection_string or self.scan_blob_account_url):
            raise ValueError("scan_store=blob needs scan_blob_connection_string or scan_blob_account_url")
        if self.secret_store == "keyvault" and not self.key_vault_url:  # noqa: S105 - a store kind, not a secret
            raise ValueError("secret_store=keyvault needs key_vault_url")
        if self.api_page_size_default > self.api_page_size_max:
            raise ValueError("api_page_size_default must not exceed api_page_size_max")
        if self.notify_backoff_base_seconds > self.notify_backoff_max_seconds:
            raise ValueError("notify_backoff_base_seconds must not exceed notify_backoff_max_seconds")
        return self

    @model_validator(mode="after")
    def _check_placeholder_secrets(self) -> Settings:
        """Outside local development no secret may be a placeholder: a deployment that still signs in to
        the feed with the emulator's password, or guards /api/metrics with "changeme", stops at start-up
        instead of running. The values are never repeated in the message."""
        if self.local_development:
            return self
        problems = [f"{name} is {why}" for name, why in self._placeholder_secrets()]
        if problems:
            raise ValueError(
                "; ".join(problems) + ". The feed (NIVODA_ENDPOINT) is not on this machine, so this is not local"
                " development: set the real secret"
            )
        return self

    def _placeholder_secrets(self) -> Iterator[tuple[str, str]]:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if not isinstance(value, SecretStr):
                continue
            text, label = value.get_secret_value(), name.upper()
            if name == "database_url":
                password = _database_password(text)
                if password is None:
                    continue  # no password in the URL (Entra sign-in, peer or certificate auth)
                text, label = password, "the password in DATABASE_URL"
            if (why := placeholder_reason(text)) is not None:
                yield label, why

    @property
    def local_development(self) -> bool:
        """Whether these settings are a laptop's: the feed is on this machine (the emulator binds only
        127.0.0.1). A deployment always reaches the supplier's feed over the network."""
        host = urlsplit(self.nivoda_endpoint).hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False  # a name: the supplier's host

    @property
    def cors_origins(self) -> list[str]:
        return [origin.strip() for origin in self.api_cors_origins.split(",") if origin.strip()]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, LocalSettingsSource(settings_cls)


def placeholder_reason(secret: str) -> str | None:
    """Why `secret` is no secret (a placeholder, an unresolved reference...), or None if it may be one."""
    text = secret.strip()
    lowered = text.lower()
    if lowered in PLACEHOLDER_SECRETS or (text.startswith("<") and text.endswith(">")):
        return "empty or a placeholder"
    if lowered.startswith("@microsoft.keyvault("):
        # App Service passes a Key Vault reference on as text when it cannot resolve it.
        return "an unresolved Key Vault reference (does the secret exist, may the app's identity read it?)"
    if "usedevelopmentstorage=true" in lowered or "devstoreaccount1" in lowered:
        return "Azurite's published development account"
    return None


def _database_password(url: str) -> str | None:
    try:
        password = psycopg.conninfo.conninfo_to_dict(url).get("password")
    except psycopg.ProgrammingError:
        return None  # not a connection string at all: connecting says so, naming DATABASE_URL
    return None if password is None else str(password)


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings; raise ConfigError naming each bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper() or "settings"
            problems.append(f"  {name}: {error['msg']}")
        raise ConfigError("invalid configuration:\n" + "\n".join(problems)) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
