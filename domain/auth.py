"""Who may do what: roles, each a set of permissions. Pure data, no I/O.

The API checks a route's permission against the caller's role (from the token) and answers 403
naming the permission that is missing; the order workflow then applies the order's own rules
(the approval level, separation of duties).
"""

from __future__ import annotations

from enum import StrEnum

# People's and API keys' names: no `:`, so no user is ever called like an API key's caller.
NAME_PATTERN = r"^[A-Za-z0-9_.@-]+$"
# An API key acts as `key:<its name>`, on the audit trail and in an order's `entered_by`,
# `approvals`, …: never mistaken for the person of that name.
API_KEY_NAMESPACE = "key:"


def api_key_caller(name: str) -> str:
    """The caller an API key named `name` makes."""
    return f"{API_KEY_NAMESPACE}{name}"


class Role(StrEnum):
    SALES = "sales"  # 销售: enters, amends, cancels their own orders
    APPROVER_L1 = "approver_l1"  # supervisor
    APPROVER_L2 = "approver_l2"  # manager
    WAREHOUSE = "warehouse"
    PRODUCTION = "production"
    FINANCE = "finance"
    OPS = "ops"  # reads everything, reports, decodes Temporal payloads, repairs terminated orders
    INTEGRATOR = "integrator"  # machine clients: start orders, report deliveries and payments
    ADMIN = "admin"  # users, API keys, master data


class Permission(StrEnum):
    ORDERS_READ = "orders:read"
    OPERATIONS_READ = "operations:read"  # the warehouse's and the plant's work lists
    ORDERS_CREATE = "orders:create"
    ORDERS_AMEND = "orders:amend"
    ORDERS_CANCEL = "orders:cancel"
    ORDERS_HOLD = "orders:hold"
    ORDERS_APPROVE = "orders:approve"
    # Undo what an order whose workflow run was terminated (or timed out, failed) left open.
    ORDERS_REPAIR = "orders:repair"
    PAYMENTS_RECORD = "payments:record"
    SHIPMENTS_DISPATCH = "shipments:dispatch"
    DELIVERIES_REPORT = "deliveries:report"
    STOCK_WRITE = "stock:write"
    PRODUCTION_WRITE = "production:write"
    RETURNS_REQUEST = "returns:request"
    RETURNS_DECIDE = "returns:decide"
    RETURNS_HANDLE = "returns:handle"
    CATALOG_READ = "catalog:read"
    CATALOG_WRITE = "catalog:write"
    CREDIT_WRITE = "credit:write"
    REPORTS_READ = "reports:read"
    AUDIT_READ = "audit:read"
    CODEC_USE = "codec:use"
    USERS_MANAGE = "users:manage"


P = Permission

_READERS = {P.ORDERS_READ, P.CATALOG_READ}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.SALES: frozenset(
        _READERS
        | {
            P.ORDERS_CREATE,
            P.ORDERS_AMEND,
            P.ORDERS_CANCEL,
            P.ORDERS_HOLD,
            P.RETURNS_REQUEST,
        }
    ),
    Role.APPROVER_L1: frozenset(_READERS | {P.ORDERS_APPROVE, P.RETURNS_DECIDE, P.REPORTS_READ}),
    Role.APPROVER_L2: frozenset(_READERS | {P.ORDERS_APPROVE, P.RETURNS_DECIDE, P.REPORTS_READ}),
    Role.WAREHOUSE: frozenset(
        _READERS
        | {
            P.OPERATIONS_READ,
            P.STOCK_WRITE,
            P.SHIPMENTS_DISPATCH,
            P.DELIVERIES_REPORT,
            P.RETURNS_HANDLE,
        }
    ),
    Role.PRODUCTION: frozenset(_READERS | {P.OPERATIONS_READ, P.PRODUCTION_WRITE}),
    Role.FINANCE: frozenset(
        _READERS | {P.PAYMENTS_RECORD, P.CREDIT_WRITE, P.ORDERS_HOLD, P.REPORTS_READ}
    ),
    Role.OPS: frozenset(
        _READERS | {P.OPERATIONS_READ, P.REPORTS_READ, P.AUDIT_READ, P.CODEC_USE, P.ORDERS_REPAIR}
    ),
    Role.INTEGRATOR: frozenset(
        _READERS | {P.OPERATIONS_READ, P.ORDERS_CREATE, P.DELIVERIES_REPORT, P.PAYMENTS_RECORD}
    ),
    Role.ADMIN: frozenset({P.CATALOG_READ, P.CATALOG_WRITE, P.USERS_MANAGE, P.AUDIT_READ}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def roles_with(permission: Permission) -> list[Role]:
    """The roles that hold a permission, in declaration order (named in a 403)."""
    return [role for role in Role if permission in ROLE_PERMISSIONS[role]]
