"""Outside development the settings refuse what an attacker could guess or read: secrets with
little entropy (not only the public development values and short ones), payload keys that are
plainly not random, and order data in clear in Temporal unless that is explicitly allowed, which
the API and the workers then say at every start-up."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from typing import Any

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs
from temporalio.client import Client

from api.main import create_app
from domain.entropy import MIN_KEY_BITS, estimated_bits, require_strong_secret, strong_secret
from settings import Settings
from store.db import Database
from worker import build_worker

STRONG = "prod-settings-test-9c4e1b7a2f05d83e6a1c"
KEYS = {"k1": base64.b64encode(secrets.token_bytes(32)).decode()}


def production(**fields: Any) -> Settings:
    defaults = {
        "environment": "production",
        "auth_secret": STRONG,
        "notify_webhook_secret": secrets.token_hex(32),
        "payload_keys": KEYS,
        "payload_key_id": "k1",
        "audit_keys": {"a1": secrets.token_urlsafe(32)},
        "audit_key_id": "a1",
    }
    return Settings(_env_file=None, **(defaults | fields))


@pytest.mark.parametrize("environment", ["production", "test"])
@pytest.mark.parametrize(
    ("field", "weak", "named"),
    [
        ("auth_secret", "a" * 36, "AUTH_SECRET"),
        ("auth_secret", "abcdefghijklmnopqrstuvwxyz0123456789", "AUTH_SECRET"),
        ("auth_secret", "changeme-changeme-changeme-changeme", "AUTH_SECRET"),
        ("notify_webhook_secret", "webhook-secret", "NOTIFY_WEBHOOK_SECRET"),
        ("notify_webhook_secret", "s3cr3t" * 8, "NOTIFY_WEBHOOK_SECRET"),
        ("payload_keys", {"k1": base64.b64encode(b"k" * 32).decode()}, "PAYLOAD_KEYS"),
        ("payload_keys", {"k1": base64.b64encode(bytes(range(32))).decode()}, "PAYLOAD_KEYS"),
        ("audit_keys", {"a1": "audit-key-audit-key-audit-key-audit-key"}, "AUDIT_KEYS"),
    ],
)
def test_guessable_secrets_are_refused_naming_the_variable(
    environment: str, field: str, weak: Any, named: str
) -> None:
    hook = {"notify_webhook_url": "https://hooks.example/x"}
    with pytest.raises(ValidationError, match=rf"{named}.*too guessable"):
        production(environment=environment, **hook, **{field: weak})
    # Development takes anything (its own defaults are public anyway).
    production(environment="development", **hook, **{field: weak})


def test_random_secrets_from_the_usual_generators_pass() -> None:
    """`openssl rand -hex 32`, `openssl rand -base64 48`, `secrets.token_urlsafe(32)`, and
    32 random bytes for a payload key: never refused, draw after draw."""
    for _ in range(300):
        for value in (
            secrets.token_hex(32),
            base64.b64encode(secrets.token_bytes(48)).decode(),
            secrets.token_urlsafe(32),
        ):
            require_strong_secret("AUTH_SECRET", value)
        assert strong_secret(secrets.token_bytes(32), MIN_KEY_BITS)
    assert production(notify_webhook_url="http://h/x", notify_webhook_secret=secrets.token_hex(32))
    assert estimated_bits("a" * 36) == 0


def test_unencrypted_payloads_need_an_explicit_allowance_outside_development() -> None:
    with pytest.raises(ValidationError, match="ALLOW_UNENCRYPTED_PAYLOADS=true"):
        production(encrypt_payloads=False)
    allowed = production(encrypt_payloads=False, allow_unencrypted_payloads=True)
    assert allowed.payload_codec() is None
    assert Settings(_env_file=None, encrypt_payloads=False).payload_codec() is None


def test_the_settings_read_the_allowance_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        "ENVIRONMENT": "production",
        "AUTH_SECRET": STRONG,
        "ENCRYPT_PAYLOADS": "false",
        "PAYLOAD_KEYS": json.dumps(KEYS),
        "PAYLOAD_KEY_ID": "k1",
        "AUDIT_KEYS": json.dumps({"a1": secrets.token_urlsafe(32)}),
        "AUDIT_KEY_ID": "a1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match="ALLOW_UNENCRYPTED_PAYLOADS"):
        Settings(_env_file=None)
    monkeypatch.setenv("ALLOW_UNENCRYPTED_PAYLOADS", "true")
    assert not Settings(_env_file=None).encrypt_payloads


async def test_the_api_and_the_worker_warn_at_start_up_when_payloads_are_in_clear(
    settings: Settings, temporal_client: Client, db: Database
) -> None:
    clear = settings.model_copy(
        update={
            "encrypt_payloads": False,
            "allow_unencrypted_payloads": True,
            "task_queue": f"clear-{uuid.uuid4().hex[:8]}",  # built, never run
        }
    )
    app = create_app(clear)
    with capture_logs() as api_logs:
        async with app.router.lifespan_context(app):
            pass
    with capture_logs() as worker_logs:
        build_worker(temporal_client, db, clear)
    for logs in (api_logs, worker_logs):
        warned = [e for e in logs if e["event"] == "payloads_unencrypted"]
        assert warned and warned[0]["log_level"] == "warning", logs
        assert warned[0]["allowed_by"] == "ALLOW_UNENCRYPTED_PAYLOADS"
    sealed_settings = settings.model_copy(update={"task_queue": f"sealed-{uuid.uuid4().hex[:8]}"})
    with capture_logs() as sealed:
        build_worker(temporal_client, db, sealed_settings)
    assert not [e for e in sealed if e["event"] == "payloads_unencrypted"]
