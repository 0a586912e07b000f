"""Emulator settings: start-up configuration (`EmulatorConfig`, env prefix `EMULATOR_`) and the
fault and quirk settings (`FaultSettings`) that can also be replaced at run time.

`EmulatorConfig` carries every `FaultSettings` field under the same name (one name per concept), so
`EMULATOR_RATE_429=0.1` and `PUT /_emulator/faults {"rate_429": 0.1}` mean the same thing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from emulator import hostile

DEFAULT_BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def _rate(default: float = 0.0, description: str = "") -> float:
    return Field(default=default, ge=0.0, le=1.0, description=description)


class FaultSettings(BaseModel):
    """Faults (default off) and production quirks (default on). Rates are per data request."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    latency_ms: float = Field(default=0.0, ge=0.0, description="Added to every data request")
    latency_jitter_ms: float = Field(default=0.0, ge=0.0, description="Uniform extra latency, 0..this")
    rate_429: float = _rate(description="HTTP 429 with a Retry-After header")
    retry_after_seconds: int = Field(default=1, ge=0)
    rate_5xx: float = _rate(description="HTTP 500, 502 or 503")
    rate_timeout: float = _rate(description="Hang `timeout_hang_seconds` before answering")
    timeout_hang_seconds: float = Field(default=30.0, ge=0.0)
    rate_malformed_json: float = _rate(description="HTTP 200 with a truncated JSON body")
    rate_graphql_error: float = _rate(description="HTTP 200 with only an INTERNAL_SERVER_ERROR in errors[]")
    rate_expired_token: float = _rate(description="Treat the request's token as expired")
    malformed_item_rate: float = _rate(description="Share of stones (fixed by seed) always served malformed")
    hostile_item_rate: float = _rate(
        description="Share of stones (fixed by seed) always served hostile: NUL, lone surrogates, NaN and"
        " Infinity, 20 kB strings, blank or stolen ids, absurd numbers, wrong JSON types, unknown grades"
    )
    hostile_kinds: list[str] = Field(
        default_factory=list,
        description="Hostile kinds to draw from (names as in GET /_emulator/hostile; empty: every kind)",
    )
    faults_on_auth: bool = Field(default=False, description="Also inject faults into authenticate requests")
    total_count_minus_offset: bool = Field(default=True, description="Page total_count = count - offset")
    count_ratio: float = Field(default=1.0, ge=0.0, le=10.0, description="Scales reported counts")
    short_page_rate: float = _rate(0.02, "Share of pages cut short though more stones follow")
    failing_dpc_from: list[int] = Field(
        default_factory=list,
        description="Page requests (variables with an offset) whose query's dollar_per_carat.from is listed"
        " always answer HTTP 500: a partition that fails permanently while counts still work",
    )

    @field_validator("hostile_kinds")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        return hostile.check_kinds(value)

    @model_validator(mode="after")
    def _exclusive_rates_fit(self) -> FaultSettings:
        # One uniform draw per request picks at most one fault, so the rates must fit in [0, 1].
        if sum(self.exclusive_rates().values()) > 1.0 + 1e-9:
            raise ValueError(
                "rate_429 + rate_5xx + rate_timeout + rate_malformed_json + rate_graphql_error"
                " + rate_expired_token must be <= 1"
            )
        return self

    def exclusive_rates(self) -> dict[str, float]:
        return {
            "rate_limited": self.rate_429,
            "server_error": self.rate_5xx,
            "timeout": self.rate_timeout,
            "malformed_json": self.rate_malformed_json,
            "graphql_error": self.rate_graphql_error,
            "expired_token": self.rate_expired_token,
        }


class EmulatorConfig(BaseSettings, FaultSettings):
    """Everything the emulator needs to start; every field can come from `EMULATOR_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="EMULATOR_", extra="forbid", validate_assignment=True)

    port: int = Field(default=4100, ge=0, le=65535, description="0 picks a free port")
    size: int = Field(default=100_000, ge=0, le=20_000_000, description="Stones in the initial inventory")
    seed: int = Field(default=7, ge=0, lt=2**63)
    labgrown_share: float = Field(default=0.55, ge=0.0, le=1.0)
    base_time: datetime = Field(
        default=DEFAULT_BASE_TIME, description="The initial stones were last updated in the 90 days before this"
    )
    username: str = "emulator@caratflow.test"
    password: SecretStr = SecretStr("emulator-password")
    token_ttl_seconds: float = Field(default=21_600.0, gt=0.0)
    auth_error_style: Literal["graphql", "http"] = "graphql"
    max_limit: int = Field(default=50, ge=1, description="Largest page a client may ask for")
    default_limit: int = Field(default=50, ge=1)

    @field_validator("base_time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def fault_settings(self) -> FaultSettings:
        return FaultSettings(**{name: getattr(self, name) for name in FaultSettings.model_fields})
