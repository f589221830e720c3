"""The settings and the user fields notifications need: SMTP_URL parsed at start (a mistake
stops the process), a person's e-mail address and language through the admin's /users."""

from __future__ import annotations

import uuid

import httpx
import pytest
from pydantic import ValidationError

from domain.notices import SmtpServer
from settings import Settings
from tests.helpers import error_fields


def test_smtp_url_forms_and_mistakes() -> None:
    plain = SmtpServer.parse("smtp://mail.example.com")
    assert (plain.host, plain.port, plain.tls, plain.starttls, plain.username) == (
        "mail.example.com",
        25,
        False,
        False,
        None,
    )
    upgraded = SmtpServer.parse(
        "smtp://bot%40example.com:p%40ss@mail.example.com:587?starttls=true"
    )
    assert (upgraded.port, upgraded.starttls) == (587, True)
    assert (upgraded.username, upgraded.password) == ("bot@example.com", "p@ss")
    tls = SmtpServer.parse("smtps://mail.example.com")
    assert (tls.port, tls.tls, tls.starttls) == (465, True, False)
    for wrong in (
        "http://mail",
        "smtp://",
        "smtp://mail:99999",
        "smtp://m?tls=1",
        "smtp://m?starttls=x",
    ):
        with pytest.raises(ValueError):
            SmtpServer.parse(wrong)
    assert Settings(smtp_url=None).smtp_server() is None
    with pytest.raises(ValidationError, match="SMTP_URL"):
        Settings(smtp_url="mail.example.com:25")


async def test_a_persons_email_and_language_are_set_shown_and_cleared(
    api: httpx.AsyncClient,
) -> None:
    name = f"mail.{uuid.uuid4().hex[:8]}"
    body = {"username": name, "password": "long-enough-1", "role": "approver_l1"}
    bad = await api.post("/users", json=body | {"email": "not an address", "language": "fr"})
    assert bad.status_code == 422
    assert error_fields(bad) == {"email", "language"}, bad.json()
    made = await api.post("/users", json=body | {"email": f"{name}@example.com", "language": "en"})
    assert made.status_code == 201, made.text
    assert (made.json()["email"], made.json()["language"]) == (f"{name}@example.com", "en")
    changed = await api.patch(f"/users/{name}", json={"language": "zh"})
    assert (changed.json()["email"], changed.json()["language"]) == (f"{name}@example.com", "zh")
    cleared = await api.patch(f"/users/{name}", json={"email": ""})
    assert (cleared.json()["email"], cleared.json()["language"]) == (None, "zh")
    (listed,) = [u for u in (await api.get("/users")).json() if u["username"] == name]
    assert (listed["email"], listed["language"]) == (None, "zh")
