"""Configuration from the environment (or a `.env` file), created once per process."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.approval import ApprovalPolicy
from domain.policy import OrderPolicy, PolicyError, parse_policy

DATA_DIR = Path(".data")
DEV_WEBHOOK_SECRET = "development-only-webhook-secret"
DEFAULT_POLICY_FILE = Path(__file__).parent / "domain" / "orders-policy.yaml"


class Settings(BaseSettings):
    """Every knob of the service. Environment variables use the field names in upper case."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"

    database_url: str = Field(
        default=f"sqlite+aiosqlite:///{DATA_DIR / 'orders.db'}",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+psycopg://...",
    )

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "sales-orders"
    max_cached_workflows: int = Field(
        default=2000, description="Sticky cache size: bounds worker memory with many open orders."
    )

    command_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long the API waits for a workflow to answer a command before a 503 "
        "(retrying the same request is always safe).",
    )

    max_body_bytes: int = Field(
        default=1_000_000, gt=0, description="A larger request body is refused with 413."
    )

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    temporal_port: int = 7233
    temporal_ui_port: int = 8233

    orders_policy_file: Path = Field(
        default=DEFAULT_POLICY_FILE,
        description="The deadline policy: calendar, SLAs per tier and priority, ladders.",
    )

    notify_webhook_url: str | None = Field(
        default=None, description="Where deadline notifications are POSTed; unset: log only."
    )
    notify_webhook_secret: str = Field(
        default=DEV_WEBHOOK_SECRET, description="HMAC-SHA256 key for the X-Signature header."
    )

    # Approval rules (审核规则)
    auto_approval_limit: Decimal = Decimal(50_000)
    two_level_limit: Decimal = Decimal(200_000)
    max_discount_pct: Decimal = Decimal(10)
    rush_needs_approval: bool = True

    @model_validator(mode="after")
    def _limits_make_sense(self) -> Settings:
        if self.two_level_limit < self.auto_approval_limit:
            raise ValueError("two_level_limit must not be below auto_approval_limit")
        if (
            self.environment == "production"
            and self.notify_webhook_url
            and self.notify_webhook_secret == DEV_WEBHOOK_SECRET
        ):
            raise ValueError("set NOTIFY_WEBHOOK_SECRET: the development secret is public")
        return self

    def approval_policy(self) -> ApprovalPolicy:
        return ApprovalPolicy(
            auto_approval_limit=self.auto_approval_limit,
            two_level_limit=self.two_level_limit,
            max_discount_pct=self.max_discount_pct,
            rush_needs_approval=self.rush_needs_approval,
        )

    def load_policy(self) -> OrderPolicy:
        """Read and check the policy file; PolicyError names the line and field of a mistake."""
        try:
            text = self.orders_policy_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"{self.orders_policy_file}: cannot be read: {exc}") from exc
        return parse_policy(text, source=str(self.orders_policy_file))


def calendar_years() -> list[int]:
    """The years whose holidays a process loads: enough for any deadline armed while it runs."""
    this_year = datetime.now(UTC).year
    return list(range(this_year - 1, this_year + 4))


@lru_cache
def get_settings() -> Settings:
    return Settings()
