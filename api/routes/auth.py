"""Signing in, and what `admin` manages: users and API keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator
from sqlmodel import col, select

from api.auth import (
    TOO_MANY_ATTEMPTS,
    PrincipalCache,
    allowed,
    authenticate,
    client_address,
    current_principal,
    issue_token,
    new_api_key,
    principal_cache,
    revoke_token,
)
from api.bodies import IdPath
from api.deps import DbDep, SettingsDep
from api.errors import ProblemError
from api.principal import Principal
from domain.auth import NAME_PATTERN, ROLE_PERMISSIONS, Permission, Role, api_key_caller
from domain.notices import EMAIL_PATTERN
from domain.passwords import hash_password
from domain.text import Id, without_control_characters
from store.tables import ApiKey, User, UserBase, UserContact

router = APIRouter(tags=["auth"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, invalid, expired or revoked credentials"},
    403: {"description": "The caller's role lacks the permission"},
    429: TOO_MANY_ATTEMPTS,
}
Admin = Annotated[Principal, allowed(Permission.USERS_MANAGE)]
# Cleared after every change to users, tokens or keys: it takes effect at once.
Principals = Annotated[PrincipalCache, Depends(principal_cache)]
# No `:` in a name: `key:<name>` is an API key's caller, never a user.
Username = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN)]
Password = Annotated[str, Field(min_length=8, max_length=200)]


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the token expires.")


class Me(BaseModel):
    username: str = Field(description="A user's name, or `key:<name>` for an API key.")
    role: Role
    via: str = Field(description="`token` (a signed-in user) or `api_key`.")
    permissions: list[Permission]
    customer_ids: list[str]
    regions: list[str]
    expires_at: datetime | None


@router.post(
    "/auth/token",
    responses={
        401: {"description": "Incorrect username or password"},
        429: TOO_MANY_ATTEMPTS,
    },
)
async def sign_in(
    request: Request,
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=200)],
    db: DbDep,
    settings: SettingsDep,
) -> Token:
    """OAuth2 password flow: `username` and `password` as form fields; a bearer token back.

    Failed attempts back off exponentially per account and per client address (shared by
    every API process): past the free ones (`SIGN_IN_FREE_FAILURES`,
    `SIGN_IN_FREE_FAILURES_PER_ADDRESS`) every attempt, the right password too, is answered
    429 with `Retry-After` until the back-off passes. A success forgets the account's failures.
    """
    user = await authenticate(db, settings, username, password, client_address(request))
    token, expires_in = issue_token(user, settings)
    return Token(access_token=token, expires_in=expires_in)


@router.get("/auth/me", responses=ERRORS)
async def who_am_i(principal: Annotated[Principal, Depends(current_principal)]) -> Me:
    """The caller as the API sees them: role, permissions, sales scope."""
    return Me(
        username=principal.name,
        role=principal.role,
        via=principal.via,
        permissions=sorted(ROLE_PERMISSIONS[principal.role]),
        customer_ids=list(principal.customer_ids),
        regions=list(principal.regions),
        expires_at=principal.expires_at,
    )


@router.post("/auth/revoke", status_code=204, responses=ERRORS)
async def sign_out(
    principal: Annotated[Principal, Depends(current_principal)],
    db: DbDep,
    principals: Principals,
) -> Response:
    """Revoke the token of this request (sign out). API keys are revoked by `admin`."""
    if principal.jti is None or principal.expires_at is None:
        raise ProblemError(409, "An API key is revoked with DELETE /api-keys/{key_id}")
    await revoke_token(db, principal, principals)
    return Response(status_code=204)


# --- users (admin) -----------------------------------------------------------------------------


Email = Annotated[
    str,
    Field(
        max_length=254,
        pattern=f"^$|{EMAIL_PATTERN}",
        description="Where deadline notifications for this person's role are mailed (with "
        'SMTP_URL set); "" or none: only in the app.',
    ),
]
Language = Annotated[
    str,
    Field(
        pattern=r"^(zh|en|)$",
        description='`zh` or `en`: the language of their e-mails; "" or none: Chinese.',
    ),
]


class UserCreate(UserBase):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    username: Username
    password: Password
    customer_ids: list[Id] = Field(default_factory=list, max_length=1000)
    regions: list[Id] = Field(default_factory=list, max_length=100)
    active: bool = Field(default=True, strict=True)
    email: Email | None = None
    language: Language | None = None

    @field_validator("display_name")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        return str(without_control_characters(value))


class UserUpdate(BaseModel):
    """Only the fields sent change (null: no change); a new password, role or deactivation
    revokes the user's tokens."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=120)
    role: Role | None = None
    customer_ids: list[Annotated[Id, Field(max_length=64)]] | None = Field(
        default=None, max_length=1000
    )
    regions: list[Annotated[Id, Field(max_length=64)]] | None = Field(default=None, max_length=100)
    active: bool | None = Field(default=None, strict=True)
    password: Password | None = None
    email: Email | None = None
    language: Language | None = None

    @field_validator("display_name")
    @classmethod
    def _no_control_characters(cls, value: str | None) -> str | None:
        return None if value is None else str(without_control_characters(value))


class UserPublic(UserBase):
    username: str
    created_at: datetime
    email: str | None = None
    language: str | None = None


def _public(user: User, contact: UserContact | None) -> UserPublic:
    public = UserPublic.model_validate(user, from_attributes=True)
    if contact is not None:
        public.email, public.language = contact.email, contact.language
    return public


def _contact(username: str, email: str | None, language: str | None) -> UserContact:
    return UserContact(username=username, email=email or None, language=language or None)


@router.post("/users", status_code=201, responses=ERRORS | {409: {"description": "Exists"}})
async def create_user(body: UserCreate, db: DbDep, _: Admin) -> UserPublic:
    """Create a person who signs in with a password."""
    async with db.writer() as session:
        if await session.get(User, body.username) is not None:
            raise ProblemError(409, f"User {body.username} already exists")
        user = User(
            **body.model_dump(exclude={"password", "email", "language"}),
            password_hash=hash_password(body.password),
        )
        session.add(user)
        contact = _contact(body.username, body.email, body.language)
        if contact.email or contact.language:
            session.add(contact)
    return _public(user, contact)


@router.get("/users", responses=ERRORS)
async def list_users(db: DbDep, _: Admin) -> list[UserPublic]:
    async with db.reader() as session:
        users = (await session.exec(select(User).order_by(col(User.username)))).all()
        contacts = {c.username: c for c in (await session.exec(select(UserContact))).all()}
    return [_public(u, contacts.get(u.username)) for u in users]


@router.patch("/users/{username}", responses=ERRORS | {404: {"description": "No such user"}})
async def update_user(
    username: IdPath, body: UserUpdate, db: DbDep, _: Admin, principals: Principals
) -> UserPublic:
    """Change a user; a new password, role or deactivation signs them out everywhere."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)  # null: no change
    async with db.writer() as session:
        user = await session.get(User, username, with_for_update=True)
        if user is None:
            raise ProblemError(404, f"User {username} not found")
        password = changes.pop("password", None)
        contact = await session.get(UserContact, username, with_for_update=True)
        if "email" in changes or "language" in changes:
            contact = contact or UserContact(username=username)
            if "email" in changes:
                contact.email = changes.pop("email") or None
            if "language" in changes:
                contact.language = changes.pop("language") or None
            session.add(contact)
        revoke = password is not None or any(
            key in changes and changes[key] != getattr(user, key) for key in ("role", "active")
        )
        for key, value in changes.items():
            setattr(user, key, None if key in ("email", "language") and value == "" else value)
        if password is not None:
            user.password_hash = hash_password(password)
        if revoke:
            user.tokens_valid_after = datetime.now(UTC)
        session.add(user)
    principals.clear()  # role, scope or active flag: the next request sees it
    return _public(user, contact)


# --- API keys (admin) --------------------------------------------------------------------------


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Username = Field(
        description="The machine client, e.g. `erp-bridge`; it acts as `key:<name>` (on the "
        "audit trail, as an order's `entered_by`, …), never as a user of that name."
    )
    role: Role = Role.INTEGRATOR
    expires_in_days: int | None = Field(default=None, gt=0, le=3650, strict=True)


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    role: Role
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @computed_field(description="Who the key acts as: `key:<name>`.")  # type: ignore[prop-decorator]
    @property
    def acts_as(self) -> str:
        return api_key_caller(self.name)


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="Shown once: send it as `Authorization: Bearer <key>`.")


@router.post("/api-keys", status_code=201, responses=ERRORS)
async def create_api_key(body: ApiKeyCreate, db: DbDep, admin: Admin) -> ApiKeyCreated:
    """A long-lived key for a machine client. Only its hash is stored: keep the key."""
    key_id, key, secret_hash = new_api_key()
    now = datetime.now(UTC)
    row = ApiKey(
        id=key_id,
        name=body.name,
        role=body.role,
        secret_hash=secret_hash,
        created_by=admin.name,
        created_at=now,
        expires_at=now + timedelta(days=body.expires_in_days) if body.expires_in_days else None,
    )
    async with db.writer() as session:
        session.add(row)
    return ApiKeyCreated(
        **ApiKeyPublic.model_validate(row, from_attributes=True).model_dump(), key=key
    )


@router.get("/api-keys", responses=ERRORS)
async def list_api_keys(db: DbDep, _: Admin) -> list[ApiKeyPublic]:
    async with db.reader() as session:
        rows = (await session.exec(select(ApiKey).order_by(col(ApiKey.created_at)))).all()
    return [ApiKeyPublic.model_validate(r, from_attributes=True) for r in rows]


@router.delete("/api-keys/{key_id}", responses=ERRORS | {404: {"description": "No such key"}})
async def revoke_api_key(
    key_id: IdPath, db: DbDep, _: Admin, principals: Principals
) -> ApiKeyPublic:
    """Revoke a key at once; revoking it again changes nothing."""
    async with db.writer() as session:
        row = await session.get(ApiKey, key_id, with_for_update=True)
        if row is None:
            raise ProblemError(404, f"API key {key_id} not found")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
            session.add(row)
    principals.clear()
    return ApiKeyPublic.model_validate(row, from_attributes=True)
