"""The authenticated caller, as every route, service and the command log sees it.

Its own module: `api.auth` makes principals and `api.record` writes them on the command log,
and the command log must not import the authentication that records its refusals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.auth import Role
from domain.orders import Caller


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    name: str
    role: Role
    via: str  # "token" or "api_key"
    source: str  # where the request came from (client address)
    customer_ids: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    jti: str | None = None
    expires_at: datetime | None = None

    @property
    def caller(self) -> Caller:
        """Who sent a command, for the audit entries of what it does."""
        return Caller(role=self.role.value, source=f"{self.via}@{self.source}")

    @property
    def scoped(self) -> bool:
        """Sees only some customers' orders (a sales rep with customers or regions set)."""
        return bool(self.customer_ids or self.regions)
