"""The commands a person may give a return from its page: approve or refuse (the deciders:
approvers), receive the goods and inspect them (the handlers: the warehouse), which ones the
return's state and the person's role allow now, and the workflow input each becomes.

Each is validated by the API's own request body (`api.bodies`) and sent through the API's own
command path (`api.commands.Commands.update_return`, as `POST /returns/{return_no}/...`), so
audit, idempotency and 409/422 are the API's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from api.bodies import Body, Inspection, ReturnApproval, ReturnRefusal
from api.principal import Principal
from api.schemas import ReturnPublic
from domain.auth import Permission, allows
from domain.contract import ReturnUpdate
from domain.returns import (
    InspectReturnInput,
    ReceiveReturnInput,
    RefuseReturnInput,
    ReturnDecisionInput,
    ReturnStatus,
)
from web.actions import FormField

# Who may open the returns list: a role holding any of these.
RETURN_PERMISSIONS = (
    Permission.RETURNS_REQUEST,
    Permission.RETURNS_DECIDE,
    Permission.RETURNS_HANDLE,
)


class NoBody(Body):
    """`POST /returns/{return_no}/receive` takes no body."""


@dataclass(frozen=True)
class ReturnAction:
    name: str  # the URL segment: POST /app/returns/{return_no}/{name}
    label: str  # a msgid
    permission: Permission
    update: ReturnUpdate
    body: type[Body]
    build: Callable[[Principal, Any], BaseModel]
    status: ReturnStatus  # the return's status it may be taken in
    # FormField kinds as the order's actions; "accepted": each returned SKU's accepted count.
    fields: tuple[FormField, ...] = field(default=())
    style: str = ""


def _approve(p: Principal, b: ReturnApproval) -> BaseModel:
    return ReturnDecisionInput(comment=b.comment, by=p.name)


def _refuse(p: Principal, b: ReturnRefusal) -> BaseModel:
    return RefuseReturnInput(reason=b.reason, by=p.name)


def _receive(p: Principal, b: NoBody) -> BaseModel:
    return ReceiveReturnInput(by=p.name)


def _inspect(p: Principal, b: Inspection) -> BaseModel:
    return InspectReturnInput(**b.model_dump(), by=p.name)


RETURN_ACTIONS: tuple[ReturnAction, ...] = (
    ReturnAction(
        "approve",
        "Approve the return",
        Permission.RETURNS_DECIDE,
        ReturnUpdate.APPROVE,
        ReturnApproval,
        _approve,
        ReturnStatus.REQUESTED,
        (FormField("comment", "Comment", "textarea"),),
    ),
    ReturnAction(
        "refuse",
        "Refuse the return",
        Permission.RETURNS_DECIDE,
        ReturnUpdate.REFUSE,
        ReturnRefusal,
        _refuse,
        ReturnStatus.REQUESTED,
        (FormField("reason", "Reason", "textarea", required=True),),
        style="secondary",
    ),
    ReturnAction(
        "receive",
        "Goods received",
        Permission.RETURNS_HANDLE,
        ReturnUpdate.RECEIVE,
        NoBody,
        _receive,
        ReturnStatus.APPROVED,
    ),
    ReturnAction(
        "inspect",
        "Record the inspection",
        Permission.RETURNS_HANDLE,
        ReturnUpdate.INSPECT,
        Inspection,
        _inspect,
        ReturnStatus.RECEIVED,
        (FormField("lines", "Accepted quantities", "accepted"),),
    ),
)
RETURN_BY_NAME = {action.name: action for action in RETURN_ACTIONS}


def return_label(status: str, lang: str) -> str:
    """A return's status in `lang` (a status this version does not know: as it is)."""
    try:
        return ReturnStatus(status).labels.get(lang, status)
    except ValueError:
        return status


def may_see_returns(principal: Principal) -> bool:
    return any(allows(principal.role, permission) for permission in RETURN_PERMISSIONS)


def available_return_actions(ret: ReturnPublic, principal: Principal) -> list[ReturnAction]:
    """What `principal` may do to `ret` now: their role holds the permission and the return
    is in the status the step needs (the workflow still decides: a 409 if someone was faster)."""
    if ret.closed:
        return []
    return [
        action
        for action in RETURN_ACTIONS
        if allows(principal.role, action.permission) and ret.status is action.status
    ]


def returned_skus(ret: ReturnPublic) -> list[tuple[str, str, int]]:
    """Each SKU coming back as (sku, name, quantity), in the return's order: what an inspection
    accepts (one count per SKU, `lines[i]` in the workflow's answer)."""
    found: dict[str, tuple[str, str, int]] = {}
    for line in ret.lines:
        sku, name, quantity = found.get(line.sku, (line.sku, line.name, 0))
        found[line.sku] = (sku, name, quantity + line.quantity)
    return list(found.values())


def return_body_fields(action: ReturnAction, form: dict[str, str]) -> dict[str, Any]:
    """The request body the form stands for: its text fields (empty: absent, the API's null)
    and, for an inspection, each SKU's accepted count (`sku_<i>`, `accepted_<i>`) as `lines`."""
    values: dict[str, Any] = {
        item.name: form[item.name].strip() if item.kind != "textarea" else form[item.name]
        for item in action.fields
        if item.kind != "accepted" and form.get(item.name, "").strip()
    }
    if any(item.kind == "accepted" for item in action.fields):
        numbers = sorted(
            int(key[4:]) for key in form if key.startswith("sku_") and key[4:].isdigit()
        )
        values["lines"] = [
            {"sku": form[f"sku_{n}"], "accepted_quantity": form.get(f"accepted_{n}", "").strip()}
            for n in numbers
        ]
    return values
