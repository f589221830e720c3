"""Deadline notifications reach the people of the roles a ladder step names: a row in each
one's list in the app, and an e-mail through a real SMTP server (aiosmtpd), once per step and
person, in their language, however often the activity is retried."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlmodel import col, select
from temporalio.client import Client

from activities.notifications import Mailer, NotificationActivities, People
from api.main import create_app
from domain.auth import Role
from domain.messages import Notification
from domain.notices import SmtpServer
from domain.policy import Sla, StepAction, StepKind
from settings import Settings
from store import notifications as notices
from store.db import Database
from store.tables import PersonNotice, User, UserContact
from tests.auth import _HASH, TEST_PASSWORD, ActAs
from tests.helpers import Factory, eventually, submit_ok
from tests.smtp import smtp_server
from web.i18n import translator
from worker import build_worker

FAST = 20.0


async def someone(
    db: Database, role: Role, email: str | None = None, language: str | None = None, **fields: Any
) -> str:
    name = f"n.{role.value}.{uuid.uuid4().hex[:8]}"
    async with db.writer() as session:
        session.add(User(username=name, role=role, password_hash=_HASH, **fields))
        if email or language:
            session.add(UserContact(username=name, email=email, language=language))
    return name


def step(order_no: str, index: int = 1, **fields: Any) -> Notification:
    now = datetime.now(UTC)
    return Notification(
        id=f"{order_no}:approval:1:{index}",
        order_no=order_no,
        customer_id=fields.pop("customer_id", "C-NONE"),
        status="PENDING_APPROVAL",
        sla=Sla.APPROVAL,
        key="",
        step=index,
        kind=fields.pop("kind", StepKind.ESCALATION),
        level=1,
        notify=fields.pop("notify", ["approver_l1"]),
        message="Approval is overdue",
        due_at=now - timedelta(minutes=5),
        fired_at=now,
        **fields,
    )


def sender(db: Database, url: str) -> NotificationActivities:
    server = SmtpServer.parse(url)
    people = People(
        db=db,
        translator=translator,
        default_language="zh",
        timezone="Asia/Shanghai",
        app_url="https://orders.example",
        mailer=Mailer(server, "Orders <orders@example.com>", timeout=5),
    )
    return NotificationActivities(None, "unused", people=people)


async def rows_of(db: Database, notification_id: str) -> list[PersonNotice]:
    async with db.reader() as session:
        query = select(PersonNotice).where(col(PersonNotice.notification_id) == notification_id)
        return list((await session.exec(query)).all())


async def test_a_retried_delivery_neither_lists_nor_mails_twice(store: Database) -> None:
    role = Role.APPROVER_L1
    zh = await someone(store, role, email=f"{uuid.uuid4().hex[:6]}@zh.example", language="zh")
    en = await someone(store, role, email=f"{uuid.uuid4().hex[:6]}@en.example", language="en")
    quiet = await someone(store, role)  # no address: the app only
    gone = await someone(store, role, email="gone@example.com", active=False)
    other = await someone(store, Role.APPROVER_L2, email="l2@example.com")
    order_no = f"SO-{uuid.uuid4().hex[:8]}"
    notification = step(order_no)
    with smtp_server() as (url, inbox):
        activities = sender(store, url)
        for _ in range(3):  # Temporal retried it after a crash after each success
            await activities.send_notification(notification)
        zh_user = await store_user(store, zh)
        en_user = await store_user(store, en)
        (to_zh,) = inbox.to(str(zh_user.email))
        (to_en,) = inbox.to(str(en_user.email))
    assert inbox.to("gone@example.com") == [] and inbox.to("l2@example.com") == []
    assert "升级（第 1 级）" in str(to_zh["Subject"])  # noqa: RUF001
    assert order_no in str(to_zh["Subject"])
    assert str(to_en["Subject"]) == (
        f"[{order_no}] Escalation (level 1): Approval of order {order_no} was due "
        + notification.due_at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    )
    body = to_en.get_content()
    assert f"https://orders.example/app/orders/{order_no}" in body
    assert "Policy: Approval is overdue" in body
    assert to_zh["X-Notification-Id"] == notification.id
    assert to_zh["Message-ID"] != to_en["Message-ID"]
    rows = await rows_of(store, notification.id)
    assert sorted(r.username for r in rows) == sorted([zh, en, quiet])  # not `gone`, not `other`
    assert all(r.read_at is None for r in rows)
    emailed = {r.username: (r.emailed_at is not None, r.emailed_to) for r in rows}
    assert emailed[zh] == (True, zh_user.email) and emailed[quiet] == (False, None)
    assert other and gone  # named for the reader: they got nothing


async def store_user(db: Database, name: str) -> UserContact:
    async with db.reader() as session:
        found = await session.get(UserContact, name)
    assert found is not None
    return found


async def test_a_mail_server_failure_is_retried_and_a_refused_address_is_not(
    store: Database,
) -> None:
    role = Role.APPROVER_L2
    later = await someone(store, role, email=f"later-{uuid.uuid4().hex[:6]}@example.com")
    refused = await someone(store, role, email=f"refused-{uuid.uuid4().hex[:6]}@example.com")
    notification = step(f"SO-{uuid.uuid4().hex[:8]}", notify=["approver_l2"])
    later_to = str((await store_user(store, later)).email)
    refused_to = str((await store_user(store, refused)).email)
    with smtp_server() as (url, inbox):
        inbox.later_once.add(later_to)
        inbox.refuse.add(refused_to)
        activities = sender(store, url)
        # 451: the activity fails and Temporal retries it; the refused address is not retried.
        with pytest.raises(RuntimeError, match="SMTP server failed"):
            await activities.send_notification(notification)
        await activities.send_notification(notification)
        await activities.send_notification(notification)
        assert len(inbox.to(later_to)) == 1 and inbox.to(refused_to) == []
    rows = {r.username: r for r in await rows_of(store, notification.id)}
    assert rows[later].emailed_at is not None and rows[later].email_error is None
    assert rows[refused].emailed_at is None and "550" in str(rows[refused].email_error)


async def test_an_attempt_never_sends_what_another_attempt_is_sending(store: Database) -> None:
    name = await someone(store, Role.FINANCE, email=f"f-{uuid.uuid4().hex[:6]}@example.com")
    notification = step(f"SO-{uuid.uuid4().hex[:8]}", notify=["finance"])
    with smtp_server() as (url, inbox):
        activities = sender(store, url)
        # A first attempt took the e-mail and is still sending it (or died doing so).
        (recipient,) = [
            r for r in await store.write(notices.deliver, notification) if r.username == name
        ]
        assert await store.write(
            notices.claim_email, recipient.notice_id, datetime.now(UTC), timedelta(minutes=5)
        )
        with pytest.raises(RuntimeError, match="another attempt"):
            await activities.send_notification(notification)
        assert inbox.messages == []
        # Its lease has run out: it died; the next attempt sends the mail, once.
        later = activities.people
        assert later is not None
        expired = NotificationActivities(
            None,
            "unused",
            people=People(
                db=later.db,
                translator=later.translator,
                default_language="en",
                timezone=later.timezone,
                app_url=later.app_url,
                mailer=later.mailer,
                lease=timedelta(0),
            ),
        )
        await expired.send_notification(notification)
        await activities.send_notification(notification)
        assert len(inbox.messages) == 1
        assert str(inbox.messages[0]["Subject"]).startswith(f"[{notification.order_no}] Escal")


async def test_a_sales_person_scoped_to_other_customers_is_not_told(store: Database) -> None:
    mine = await someone(store, Role.SALES, customer_ids=["C-MINE"])
    theirs = await someone(store, Role.SALES, customer_ids=["C-THEIRS"])
    everyone = await someone(store, Role.SALES)
    notification = step(
        f"SO-{uuid.uuid4().hex[:8]}",
        notify=["sales"],
        customer_id="C-MINE",
        kind=StepKind.ACTION,
        action=StepAction.EXPIRE,
    )
    await store.write(notices.deliver, notification)
    names = {r.username for r in await rows_of(store, notification.id)}
    assert mine in names and everyone in names and theirs not in names


# --- the whole way: an unanswered approval on the real stack ---------------------------------


async def test_an_escalation_reaches_each_person_of_the_role_once_in_their_language(
    settings: Settings,
    db: Database,
    temporal_client: Client,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    """A worker with SMTP_URL: the approval ladder (reminder and escalation to approver_l1,
    escalation to approver_l2, expiry to sales) mails each approver_l1 twice, once a step."""
    tag = uuid.uuid4().hex[:6]
    zh_address, en_address = f"zhang-{tag}@example.com", f"smith-{tag}@example.com"
    zhang = await someone(db, Role.APPROVER_L1, email=zh_address, language="zh")
    smith = await someone(db, Role.APPROVER_L1, email=en_address, language="en")
    customer = await new_customer(customer_group="sla-approval")
    product = await new_product(stock_on_hand=10)
    with smtp_server() as (url, inbox):
        own = settings.model_copy(
            update={"task_queue": f"notify-{tag}", "smtp_url": url, "notify_webhook_url": None}
        )
        app = create_app(own)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with (
                httpx.AsyncClient(
                    auth=ActAs(app), transport=transport, base_url="http://test", timeout=30
                ) as api,
                build_worker(temporal_client, db, own),
            ):
                order = await submit_ok(
                    api,
                    customer_id=customer["customer_id"],
                    lines=[{"sku": product["sku"], "quantity": 3, "unit_price": 50}],
                )
                order_no = order["order_no"]

                async def mailed() -> None:
                    assert len(inbox.to(zh_address, order_no)) == 2
                    assert len(inbox.to(en_address, order_no)) == 2
                    view = (await api.get(f"/orders/{order_no}")).json()
                    assert view["status"] == "CANCELLED"

                await eventually(mailed, within=FAST)
                await asyncio.sleep(1.0)  # nothing more comes
                to_zh = [str(m["Subject"]) for m in inbox.to(zh_address, order_no)]
                to_en = [str(m["Subject"]) for m in inbox.to(en_address, order_no)]
                assert [s.split("] ")[1][:2] for s in to_zh] == ["提醒", "升级"]
                assert [s.split("] ")[1].split(":")[0] for s in to_en] == [
                    "Reminder",
                    "Escalation (level 1)",
                ]
                async with httpx.AsyncClient(transport=transport, base_url="https://test") as web:
                    await in_the_app(web, order_no, smith, zhang)


async def in_the_app(web: httpx.AsyncClient, order_no: str, smith: str, zhang: str) -> None:
    """The same two steps in each one's list, unread, linking to the order; the count on
    every page; mark one, mark all (CSRF-checked, one's own only)."""
    await sign_in(web, smith)
    page = await web.get("/app/notifications", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert page.text.count(f'href="/app/orders/{order_no}"') == 2
    assert "Reminder: Approval of order" in page.text
    count = unread_count(page.text)
    assert count >= 2  # others' escalations to approver_l1 may be there too
    orders = await web.get("/app/orders")
    assert unread_count(orders.text) == count
    notice_id = re.search(r'action="/app/notifications/(\d+)/read"', page.text)
    assert notice_id is not None
    csrf = csrf_of(page.text)
    marked = await web.post(
        f"/app/notifications/{notice_id.group(1)}/read", data={"csrf_token": csrf}
    )
    assert marked.status_code == 303
    assert unread_count((await web.get("/app/orders")).text) == count - 1
    # Without the form's token: refused, nothing changed.
    refused = await web.post("/app/notifications/read-all", data={"csrf_token": "x"})
    assert refused.status_code == 403
    assert unread_count((await web.get("/app/notifications/badge")).text) == count - 1
    # Another person's notification is not this person's to mark.
    await sign_in(web, zhang)
    other = await web.post(
        f"/app/notifications/{notice_id.group(1)}/read",
        data={"csrf_token": csrf_of((await web.get("/app/notifications")).text)},
    )
    assert other.status_code == 404
    zh_page = await web.get("/app/notifications", headers={"Accept-Language": "zh-CN"})
    assert f"提醒：订单 {order_no} 的审核期限" in zh_page.text  # noqa: RUF001
    everything = await web.post(
        "/app/notifications/read-all", data={"csrf_token": csrf_of(zh_page.text)}
    )
    assert everything.status_code == 303
    assert 'data-testid="unread-count"' not in (await web.get("/app/notifications")).text


def unread_count(html: str) -> int:
    found = re.search(r'data-testid="unread-count"[^>]*>(\d+)<', html)
    return int(found.group(1)) if found else 0


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found is not None
    return found.group(1)


async def sign_in(web: httpx.AsyncClient, name: str) -> None:
    web.cookies.clear()
    form = await web.get("/app/login")
    answer = await web.post(
        "/app/login",
        data={"username": name, "password": TEST_PASSWORD, "csrf_token": csrf_of(form.text)},
    )
    assert answer.status_code == 303, answer.text
