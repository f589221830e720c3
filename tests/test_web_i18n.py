"""The web app's catalogues: both languages carry every label the pages use, and the
language comes from the cookie, else the browser."""

from __future__ import annotations

import re

import pytest

from domain.auth import Role
from domain.messages import CancelReason
from domain.orders import Priority
from domain.policy import Sla, StepKind
from domain.statuses import (
    DeadlineStatus,
    InvoiceStatus,
    ProductionOrderStatus,
    ShipmentStatus,
)
from store.finance import InvoiceFilter
from web.actions import ACTIONS
from web.i18n import LANGUAGES, catalogue, choose_language, from_accept_language, translator
from web.pages.ops import SEARCHES
from web.render import NAVIGATION, TEMPLATES
from web.return_actions import RETURN_ACTIONS

LITERAL = re.compile(r"""_\((?:"([^"]+)"|'([^']+)')\)""")


def used_msgids() -> set[str]:
    found = {
        a or b for path in TEMPLATES.rglob("*.html") for a, b in LITERAL.findall(path.read_text())
    }
    found |= {item.label for item in NAVIGATION}
    for action in ACTIONS:
        found |= {action.label, f"done:{action.name}"}
        for field in action.fields:
            found.add(field.label)
            found |= {f"choice:{choice}" for choice in field.choices}
    for step in RETURN_ACTIONS:
        found |= {step.label, f"done:return-{step.name}"} | {f.label for f in step.fields}
    found |= {"decision:refused"}
    found |= {f"role:{role.value}" for role in Role}
    found |= {f"priority:{priority.value}" for priority in Priority} | {"done:submit"}
    found |= {f"production:{status.value}" for status in ProductionOrderStatus} | {"done:report"}
    found |= {f"invoices:{status.value}" for status in InvoiceFilter} | {"done:release-hold"}
    found |= {f"step:{kind.value}" for kind in StepKind} | {label for label, _ in SEARCHES}
    found |= {f"sla:{sla.value}" for sla in Sla}
    found |= {f"deadline:{status.value}" for status in DeadlineStatus}
    found |= {f"shipment:{status.value}" for status in ShipmentStatus}
    found |= {f"invoice:{status.value}" for status in InvoiceStatus}
    found |= {f"choice:{reason.value}" for reason in CancelReason}
    found |= {f"error:{code}" for code in (401, 403, 404, 409, 422, 503)}
    return found


def test_both_catalogues_hold_the_same_labels_and_every_label_the_pages_use() -> None:
    zh, en = catalogue("zh"), catalogue("en")
    assert set(zh) == set(en)
    assert used_msgids() - set(zh) == set()


def test_a_label_is_translated_and_an_unknown_one_shows_as_itself() -> None:
    assert translator("zh")("Orders") == "订单"
    assert translator("en")("role:approver_l1") == "Supervisor (approval level 1)"
    assert translator("zh")("Order SO-1 is CANCELLED") == "Order SO-1 is CANCELLED"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9,zh;q=0.8", "en"),
        ("fr-FR, en;q=0.5, zh;q=0.7", "zh"),
        ("de, en;q=0", "zh"),  # nothing supported: Chinese
        ("", "zh"),
        (None, "zh"),
        ("en;q=abc, zh-TW", "zh"),
    ],
)
def test_the_browser_language_decides_without_a_cookie(header: str | None, expected: str) -> None:
    assert from_accept_language(header) == expected


def test_the_cookie_wins_over_the_browser() -> None:
    assert choose_language("en", "zh-CN") == "en"
    assert choose_language("xx", "en") == "en"
    assert LANGUAGES == ("zh", "en")
