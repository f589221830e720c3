"""Configuration from the environment (or a `.env` file), created once per process."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

import structlog
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.approval import ApprovalPolicy
from domain.audit import DEVELOPMENT_KEYS, AuditSeal
from domain.entropy import MIN_KEY_BITS, require_strong_secret
from domain.notices import SmtpServer
from domain.policy import OrderPolicy, PolicyError, parse_policy
from payload_codec import EncryptionCodec, parse_keys

DATA_DIR = Path(".data")
DEV_WEBHOOK_SECRET = "development-only-webhook-secret"
DEV_AUTH_SECRET = "development-only-token-signing-secret-change-me"
DEV_PAYLOAD_KEY = "ZGV2ZWxvcG1lbnQtb25seS1wYXlsb2FkLWtleS0wMDE="  # 32 public bytes
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
    workflow_sandbox: bool = Field(
        default=True,
        description="Run workflow code in Temporal's sandbox, which stops a non-deterministic "
        "call (a clock, randomness, I/O) the moment it runs: on everywhere, production "
        "included (safety first). false saves about 15-20% of the worker's CPU per order "
        "(bench/README.md) and leaves that check to the tests and replays, which run in it.",
    )

    workflow_task_timeout_seconds: float = Field(
        default=10.0,
        ge=1,
        le=120,
        description="How long one workflow step may run on a worker before Temporal hands it "
        "to another: the pause an order sees when its worker dies mid-step.",
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
    temporal_ui_url: str | None = Field(
        default=None,
        description="The Temporal UI as people's browsers reach it (the web app links each "
        "order's workflow there); unset: http://127.0.0.1:<temporal_ui_port>.",
    )

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

    # People's notifications by e-mail (their in-app list, /app/notifications, needs nothing).
    smtp_url: str | None = Field(
        default=None,
        description="The SMTP server that mails deadline notifications to the people of the "
        "roles a step names: smtp://[user[:password]@]host[:port][?starttls=true] or "
        "smtps://…; unset (the default): no e-mail.",
    )
    smtp_from: str = Field(
        default="Sales orders <orders@localhost>",
        min_length=3,
        max_length=200,
        description="The From of those e-mails.",
    )
    public_url: str | None = Field(
        default=None,
        description="The web app as people's browsers reach it, for the links in e-mails; "
        "unset: http://<api_host>:<api_port>.",
    )

    auth_secret: str = Field(
        default=DEV_AUTH_SECRET,
        min_length=32,
        description="HS256 key that signs access tokens; at least 32 characters.",
    )
    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="How long one API process trusts a credential it has checked (saves two "
        "database reads per request); a revocation reaches other API processes within this. "
        "0: check every request.",
    )
    access_token_minutes: int = Field(
        default=60,
        gt=0,
        le=7 * 24 * 60,
        description="How long a signed-in token lasts; a token claiming a longer life is refused.",
    )

    # Sign-in throttling: failed attempts at a password or an API key's secret, counted in the
    # database (every API process shares them) per account or key and per client address.
    sign_in_free_failures: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Failed attempts an account (or an API key) gets before back-off.",
    )
    sign_in_free_failures_per_address: int = Field(
        default=50,
        ge=1,
        le=1_000_000,
        description="Failed attempts one client address gets, over all accounts and keys, "
        "before back-off (offices behind one address share it).",
    )
    sign_in_backoff_seconds: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        description="The first back-off; it doubles with every further failure.",
    )
    sign_in_max_backoff_seconds: float = Field(
        default=900.0, gt=0, le=86_400, description="The longest back-off."
    )
    sign_in_forget_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=30 * 86_400,
        description="Failures are forgotten this long after the last one (at least the "
        "longest back-off).",
    )

    payload_keys: dict[str, str] = Field(
        default={"dev-1": DEV_PAYLOAD_KEY},
        description="AES-256 keys for Temporal payloads, by key id, base64 (JSON object in the "
        "environment). Keep retired keys while histories sealed with them are open.",
    )
    payload_key_id: str = Field(
        default="dev-1", description="The key that seals new payloads (rotation: add, then switch)."
    )
    encrypt_payloads: bool = Field(
        default=True,
        description="Seal order data in Temporal histories (AES-GCM). Outside development "
        "false is refused unless ALLOW_UNENCRYPTED_PAYLOADS=true.",
    )
    allow_unencrypted_payloads: bool = Field(
        default=False,
        description="Accept ENCRYPT_PAYLOADS=false outside development (order data then lies "
        "in clear in Temporal's histories); the API and the workers log a warning at start-up.",
    )
    audit_keys: dict[str, str] = Field(
        default=DEVELOPMENT_KEYS,
        description="Secrets (32+ characters) that seal the audit chain with keyed MACs, by key "
        "id (JSON object in the environment). Keep retired keys: each entry names its key.",
    )
    audit_key_id: str = Field(
        default="dev-1",
        description="The key that seals new audit entries (rotation: add, then switch).",
    )
    audit_legacy_entries: int = Field(
        default=0,
        ge=0,
        description="How many entries the chain begins with from before keys (plain SHA-256): "
        "set once after the upgrade to the count `python -m store.audit verify` reports.",
    )
    audit_anchor_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often the audit anchor checkpoints the chain's head in Temporal; "
        "truncating entries written since the last checkpoint goes unseen.",
    )
    codec_cors_origins: list[str] = Field(
        default=["http://127.0.0.1:8233", "http://localhost:8233"],
        description="Browser origins (the Temporal UI) allowed to call the /codec endpoints.",
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
        if self.sign_in_max_backoff_seconds < self.sign_in_backoff_seconds:
            raise ValueError(
                "sign_in_max_backoff_seconds must not be below sign_in_backoff_seconds"
            )
        if self.sign_in_forget_seconds < self.sign_in_max_backoff_seconds:
            raise ValueError("sign_in_forget_seconds must not be below sign_in_max_backoff_seconds")
        codec = self.payload_codec()  # keys parse, the active one exists
        self.smtp_server()  # a bad SMTP_URL stops the process here
        if self.environment != "development":
            self._refuse_weak_secrets(codec is not None)
        self.audit_seal()  # the audit keys parse, the active one exists
        return self

    def _refuse_weak_secrets(self, encrypting: bool) -> None:
        """Outside development: no public development value, no guessable secret, and order
        data in Temporal sealed unless that is explicitly given up."""
        # The development defaults are in this public repository: never trust them elsewhere.
        if self.notify_webhook_url:
            if self.notify_webhook_secret == DEV_WEBHOOK_SECRET:
                raise ValueError("set NOTIFY_WEBHOOK_SECRET: the development secret is public")
            require_strong_secret("NOTIFY_WEBHOOK_SECRET", self.notify_webhook_secret)
        if self.auth_secret == DEV_AUTH_SECRET:
            raise ValueError("set AUTH_SECRET: the development signing key is public")
        require_strong_secret("AUTH_SECRET", self.auth_secret)
        if set(DEVELOPMENT_KEYS.values()) & set(self.audit_keys.values()):
            raise ValueError("set AUDIT_KEYS: the development audit key is public")
        for key_id, secret in self.audit_keys.items():
            require_strong_secret(f"AUDIT_KEYS[{key_id!r}]", secret)
        if encrypting:
            if DEV_PAYLOAD_KEY in self.payload_keys.values():
                raise ValueError("set PAYLOAD_KEYS: the development payload key is public")
            for key_id, key in parse_keys(self.payload_keys).items():
                require_strong_secret(f"PAYLOAD_KEYS[{key_id!r}]", key, MIN_KEY_BITS)
        elif not self.allow_unencrypted_payloads:
            raise ValueError(
                "ENCRYPT_PAYLOADS=false outside development leaves order data in clear in "
                "Temporal's histories: set ALLOW_UNENCRYPTED_PAYLOADS=true to accept that"
            )

    def payload_codec(self) -> EncryptionCodec | None:
        if not self.encrypt_payloads:
            return None
        return EncryptionCodec(parse_keys(self.payload_keys), self.payload_key_id)

    def smtp_server(self) -> SmtpServer | None:
        return SmtpServer.parse(self.smtp_url) if self.smtp_url else None

    def app_url(self) -> str:
        """Where people open the web app (links in e-mails), without a trailing slash."""
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    def audit_seal(self) -> AuditSeal:
        return AuditSeal.of(self.audit_keys, self.audit_key_id, self.audit_legacy_entries)

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


def warn_if_unencrypted(settings: Settings) -> None:
    """At every start-up of the API and of a worker: order data goes to Temporal in clear."""
    if not settings.encrypt_payloads:
        structlog.get_logger(__name__).warning(
            "payloads_unencrypted",
            environment=settings.environment,
            allowed_by="ALLOW_UNENCRYPTED_PAYLOADS"
            if settings.environment != "development"
            else "development",
            detail="ENCRYPT_PAYLOADS=false: order data lies in clear in Temporal's histories",
        )


def calendar_years() -> list[int]:
    """The years whose holidays a process loads: enough for any deadline armed while it runs."""
    this_year = datetime.now(UTC).year
    return list(range(this_year - 1, this_year + 4))


@lru_cache
def get_settings() -> Settings:
    return Settings()
