"""Who is calling: signed tokens (JWT, HS256) for people, hashed API keys for machines.

Every route declares the permission it needs (`Allowed(Permission.X)`); the caller's identity
and role come from the token, never from the request body. 401 for a missing, malformed,
expired or revoked credential; 403 naming the permission the caller's role lacks; 429 while
failed attempts at a password or an API key keep it or its address in back-off (`api.throttle`).
An API key acts as `key:<name>`, never as the person of that name.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import col, select

from api.deps import DbDep, SettingsDep
from api.errors import ProblemError
from api.principal import Principal
from api.record import record_attempt, record_command
from api.throttle import Attempt, Throttle, Throttled, ThrottlePolicy
from domain.auth import API_KEY_NAMESPACE, Permission, allows, api_key_caller, roles_with
from domain.passwords import hash_password, verify_password
from settings import Settings
from store.db import Database
from store.tables import ApiKey, Customer, RevokedToken, User

API_KEY_PREFIX = "sok_"
ALGORITHM = "HS256"
# Clock skew between API processes that a token's lifetime may show.
LIFETIME_LEEWAY = timedelta(seconds=60)

bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


class PrincipalCache:
    """Credentials this API process checked recently, trusted for `ttl` seconds: a request
    then costs no database read for its caller. Any change to users, tokens or keys through
    this process clears it, so it takes effect here at once (elsewhere within `ttl`); a
    token is never trusted past its expiry."""

    MAX_ENTRIES = 10_000

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, credential: str) -> Principal | None:
        hit = self._entries.get(credential)
        if hit is None:
            return None
        checked, principal = hit
        expired = principal.expires_at is not None and principal.expires_at <= datetime.now(UTC)
        if time.monotonic() - checked > self.ttl or expired:
            self._entries.pop(credential, None)
            return None
        return principal

    def put(self, credential: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[credential] = (time.monotonic(), principal)

    def clear(self) -> None:
        self._entries.clear()


async def principal_cache(request: Request) -> PrincipalCache:
    cache: PrincipalCache = request.app.state.principals
    return cache


# A user that does not exist costs as much as a wrong password (no user enumeration by timing).
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


async def authenticate(
    db: Database, settings: Settings, username: str, password: str, address: str
) -> User:
    """The user whose password this is, for a sign-in from `address`: 401 for a wrong one,
    429 while the account or the address is in back-off; each refusal is on the audit trail."""
    throttle = Throttle(db, ThrottlePolicy.from_settings(settings), "password")
    attempt = await _checked(throttle, username, address, "sign_in", actor=username)
    user = None
    if not username.startswith(API_KEY_NAMESPACE):  # an API key's caller, never a user
        async with db.reader() as session:
            user = await session.get(User, username)
    stored = user.password_hash if user is not None else _DUMMY_HASH
    ok = await asyncio.to_thread(verify_password, password, stored)
    if user is None or not ok or not user.active or not _may_sign_in(user, settings):
        backoff = await throttle.failed(attempt)
        role = user.role.value if user is not None else ""
        await _refused(db, "sign_in", username, role, address, 401, backoff_seconds=backoff)
        raise unauthorized("Incorrect username or password", error="invalid_grant")
    await throttle.succeeded(attempt)
    return user


async def _checked(
    throttle: Throttle, account: str | None, address: str, action: str, *, actor: str
) -> Attempt:
    """`throttle.check`, a refusal recorded and answered 429."""
    try:
        return await throttle.check(account, address)
    except Throttled as throttled:
        await _refused(throttle.db, action, actor, "", address, 429, blocked=throttled.keys)
        what = "signing in" if throttle.scope == "password" else "an API key"
        raise throttled.problem(what) from None


async def _refused(
    db: Database, action: str, actor: str, role: str, address: str, status: int, **detail: Any
) -> None:
    """A refused attempt on the audit trail, under the name it claimed (and that name's role,
    when it is known)."""
    via = "password" if action == "sign_in" else "api_key"
    await record_attempt(
        db,
        actor=actor,
        role=role,
        source=f"{via}@{address}"[:120],
        action=action,
        outcome=f"refused:{status}",
        detail=detail,
    )


async def revoke_token(db: Database, principal: Principal, cache: PrincipalCache) -> None:
    """Sign out: the token of `principal` is refused from now on (an API key has no token)."""
    if principal.jti is None or principal.expires_at is None:
        return
    async with db.writer() as session:
        if await session.get(RevokedToken, principal.jti) is None:
            session.add(
                RevokedToken(
                    jti=principal.jti, username=principal.name, expires_at=principal.expires_at
                )
            )
    cache.clear()


def _may_sign_in(user: User, settings: Settings) -> bool:
    return not user.demo or settings.environment == "development"


# --- signed tokens -----------------------------------------------------------------------------


def issue_token(user: User, settings: Settings) -> tuple[str, int]:
    now = datetime.now(UTC)
    lifetime = timedelta(minutes=settings.access_token_minutes)
    claims = {
        "sub": user.username,
        "role": user.role.value,
        "iat": int(now.timestamp()),
        "t": now.timestamp(),  # issued-at to the microsecond: revocation compares with it
        "exp": int((now + lifetime).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, settings.auth_secret, algorithm=ALGORITHM)
    return token, int(lifetime.total_seconds())


def new_api_key() -> tuple[str, str, str]:
    """(key id, the whole key shown once, the stored hash of its secret)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{API_KEY_PREFIX}{key_id}.{secret}", _secret_hash(secret)


def _secret_hash(secret: str) -> str:
    # The secret is 256 random bits: a plain SHA-256 cannot be brute-forced.
    return hashlib.sha256(secret.encode()).hexdigest()


def unauthorized(detail: str, error: str = "invalid_token") -> ProblemError:
    return ProblemError(
        401,
        detail,
        headers={"WWW-Authenticate": f'Bearer error="{error}"'},
    )


async def _from_token(token: str, db: Database, settings: Settings, source: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            settings.auth_secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "role", "exp", "iat", "jti", "t"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise unauthorized("The token has expired; sign in again") from exc
    except jwt.PyJWTError as exc:
        raise unauthorized("The token is not valid") from exc
    if _lifetime_too_long(claims, settings):
        raise unauthorized("The token claims a longer life than this API grants; sign in again")
    async with db.reader() as session:
        user = await session.get(User, str(claims["sub"]))
        revoked = await session.get(RevokedToken, str(claims["jti"]))
    issued_at = float(claims["t"])
    if (
        user is None
        or not user.active
        or not _may_sign_in(user, settings)
        or revoked is not None
        or user.role.value != claims["role"]
        or issued_at < user.tokens_valid_after.timestamp()
    ):
        raise unauthorized("The token has been revoked; sign in again")
    return Principal(
        name=user.username,
        role=user.role,
        via="token",
        source=source,
        customer_ids=tuple(user.customer_ids),
        regions=tuple(user.regions),
        jti=str(claims["jti"]),
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
    )


def _lifetime_too_long(claims: dict[str, Any], settings: Settings) -> bool:
    """A token, even one signed with our key, living longer than ACCESS_TOKEN_MINUTES: from
    its issue (`exp - iat`) or from now (`exp` far ahead with a recent `iat`)."""
    longest = timedelta(minutes=settings.access_token_minutes) + LIFETIME_LEEWAY
    try:
        issued = datetime.fromtimestamp(float(claims["iat"]), UTC)
        expires = datetime.fromtimestamp(float(claims["exp"]), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return True
    return expires - issued > longest or expires - datetime.now(UTC) > longest


async def _from_api_key(key: str, db: Database, settings: Settings, source: str) -> Principal:
    key_id, _, secret = key.removeprefix(API_KEY_PREFIX).partition(".")
    async with db.reader() as session:
        row = await session.get(ApiKey, key_id) if key_id and secret else None
    # A key that exists is throttled by its id; any attempt by its address.
    throttle = Throttle(db, ThrottlePolicy.from_settings(settings), "api_key")
    actor = api_key_caller(row.name) if row is not None else api_key_caller("?")
    attempt = await _checked(throttle, row.id if row else None, source, "api_key", actor=actor)
    if row is None or not hmac.compare_digest(row.secret_hash, _secret_hash(secret)):
        backoff = await throttle.failed(attempt)
        role = row.role.value if row is not None else ""
        detail = {"key_id": key_id[:32], "backoff_seconds": backoff}
        await _refused(db, "api_key", actor, role, source, 401, **detail)
        raise unauthorized("The API key is not valid")
    await throttle.succeeded(attempt)
    now = datetime.now(UTC)
    if row.revoked_at is not None:
        raise unauthorized("The API key has been revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise unauthorized("The API key has expired")
    return Principal(name=actor, role=row.role, via="api_key", source=source)


TOO_MANY_ATTEMPTS: dict[str, Any] = {
    "description": "Too many failed attempts at a password or an API key for this account, "
    "key or client address: refused unchecked until the back-off passes, the right secret too",
    "headers": {
        "Retry-After": {
            "description": "Seconds until the back-off passes.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def current_principal(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(bearer)],
    cache: Annotated[PrincipalCache, Depends(principal_cache)],
) -> Principal:
    if not token:
        raise unauthorized("Authentication required: send Authorization: Bearer <token>")
    return await principal_for(request, token, db, settings, cache)


async def principal_for(
    request: Request, token: str, db: Database, settings: Settings, cache: PrincipalCache
) -> Principal:
    """The caller a credential names (a token or an API key), checked once per cache period;
    401 if it is not valid. The API's bearer header and the web app's session cookie both
    come here."""
    source = client_address(request)
    principal = cache.get(token)
    if principal is not None:
        principal = replace(principal, source=source)
    else:
        if token.startswith(API_KEY_PREFIX):
            principal = await _from_api_key(token, db, settings, source)
        else:
            principal = await _from_token(token, db, settings, source)
        cache.put(token, principal)
    request.state.principal = principal
    return principal


class Allowed:
    """A route's dependency: the caller, holding `permission` (else 403 naming it)."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(
        self, request: Request, principal: Annotated[Principal, Depends(current_principal)]
    ) -> Principal:
        if not allows(principal.role, self.permission):
            route = request.scope.get("route")
            await record_command(
                request.app.state.db,
                principal,
                getattr(route, "name", request.url.path),
                "refused:403",
                order_no=str(request.path_params.get("order_no", "")),
                detail={"permission": self.permission.value, "path": request.url.path},
            )
            raise ProblemError(
                403,
                f"Role {principal.role} lacks permission {self.permission} "
                f"(held by: {', '.join(roles_with(self.permission))})",
                permission=self.permission.value,
            )
        return principal


def route_permission(route: Any) -> Permission | None:
    """The permission a route's `Allowed` dependency demands (None: any signed-in caller)."""
    pending = list(getattr(getattr(route, "dependant", None), "dependencies", []))
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, Allowed):
            return dependant.call.permission
        pending.extend(dependant.dependencies)
    return None


def document_permissions(routes: list[Any]) -> None:
    """Each operation's docs name its permission and the roles holding it (`x-permission`)."""
    for route in routes:
        permission = route_permission(route)
        if permission is None:
            continue
        route.openapi_extra = (route.openapi_extra or {}) | {"x-permission": permission.value}
        route.responses.setdefault(401, {"description": "Missing, invalid or expired token"})
        route.responses.setdefault(403, {"description": f"The role lacks `{permission}`"})
        route.responses.setdefault(429, TOO_MANY_ATTEMPTS)
        note = f"Permission `{permission}` (roles: {', '.join(roles_with(permission))})."
        route.description = f"{route.description}\n\n{note}".strip()


def allowed(permission: Permission) -> Any:
    """`principal: Annotated[Principal, allowed(Permission.X)]`."""
    return Depends(Allowed(permission))


# --- sales scoping -----------------------------------------------------------------------------


async def visible_customers(db: Database, principal: Principal) -> set[str] | None:
    """The customers whose orders the caller may see; None: all of them."""
    if not principal.scoped:
        return None
    ids = set(principal.customer_ids)
    if principal.regions:
        async with db.reader() as session:
            rows = await session.exec(
                select(Customer.customer_id).where(col(Customer.region).in_(principal.regions))
            )
            ids.update(rows.all())
    return ids


async def in_scope(db: Database, principal: Principal, customer_id: str) -> bool:
    visible = await visible_customers(db, principal)
    return visible is None or customer_id in visible
