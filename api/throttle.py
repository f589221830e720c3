"""Sign-in throttling: failed attempts at a secret (a password, an API key's secret) earn an
exponential back-off, per account (or key) and per client address, counted in the database so
that every API process shares them (`store.throttle`). The API's sign-in and its API keys use
it (`api.auth`); so does any other door that checks a password, the web app's sign-in too.

While an account or an address is in back-off, every attempt there is refused (429 with
`Retry-After`) before its secret is checked, the right one too, so a guesser learns nothing;
such refused attempts do not count as failures (the back-off a guesser earns ends on time for
the account's owner). A success forgets the account's failures, not the address's.

`check` and `failed` are two steps: attempts already past `check` when a failure is recorded
still get their answer. Their number is bounded by the checks running at once (password
checks run on a few threads); the failures they add are all counted, so a burst earns the
back-off of its size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from api.errors import ProblemError
from settings import Settings
from store import throttle as store
from store.db import Database


@dataclass(frozen=True)
class ThrottlePolicy:
    free_per_account: int
    free_per_address: int
    base_seconds: float
    max_seconds: float
    forget_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ThrottlePolicy:
        return cls(
            free_per_account=settings.sign_in_free_failures,
            free_per_address=settings.sign_in_free_failures_per_address,
            base_seconds=settings.sign_in_backoff_seconds,
            max_seconds=settings.sign_in_max_backoff_seconds,
            forget_seconds=settings.sign_in_forget_seconds,
        )

    def backoff(self, failures: int, free: int) -> float:
        """Seconds of back-off after `failures` in a row: none for the first `free`, then the
        base, doubling with each further failure, up to the maximum."""
        over = failures - free
        if over <= 0:
            return 0.0
        return min(self.max_seconds, self.base_seconds * 2.0 ** min(over - 1, 64))


class Throttled(Exception):
    """The attempt is refused unchecked: an account, key or address is in back-off."""

    def __init__(self, retry_after: float, keys: list[str]) -> None:
        super().__init__(f"in back-off for {retry_after:.1f} s: {', '.join(keys)}")
        self.retry_after = retry_after
        self.keys = keys

    def problem(self, what: str) -> ProblemError:
        """429 with `Retry-After` (whole seconds, at least 1)."""
        seconds = max(1, math.ceil(self.retry_after))
        return ProblemError(
            429,
            f"Too many failed attempts at {what}: try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


@dataclass(frozen=True)
class Attempt:
    """One attempt that passed `check`: its keys (each with its free failures) and whether
    its account had failures to forget on success."""

    keys: dict[str, int]
    account_key: str | None
    account_failed_before: bool


class Throttle:
    """Throttling for one kind of secret (`scope`: `password`, `api_key`)."""

    def __init__(self, db: Database, policy: ThrottlePolicy, scope: str) -> None:
        self.db = db
        self.policy = policy
        self.scope = scope

    async def check(self, account: str | None, address: str) -> Attempt:
        """The attempt at `account`'s secret (None: no such key, only the address counts)
        from `address`; raises `Throttled` while either is in back-off."""
        # Keys fit their column (200): names are at most 64 characters, addresses 100.
        account_key = f"{self.scope}:account:{account[:64]}" if account is not None else None
        keys = {f"{self.scope}:address:{address[:100]}": self.policy.free_per_address}
        if account_key is not None:
            keys[account_key] = self.policy.free_per_account
        found = await self.db.read(store.state, keys)
        now = datetime.now(UTC)
        blocked = {key: until for key, (_, until) in found.items() if until and until > now}
        if blocked:
            wait = max(blocked.values()) - now
            raise Throttled(wait.total_seconds(), sorted(blocked))
        return Attempt(keys, account_key, account_key in found)

    async def failed(self, attempt: Attempt) -> float:
        """Count the failure on every key of the attempt; the back-off it earned (seconds,
        0: none yet)."""
        return await self.db.write(_fail, attempt.keys, self.policy)

    async def succeeded(self, attempt: Attempt) -> None:
        """The right secret: the account's failures are forgotten (a write only when it had
        some)."""
        if attempt.account_key is not None and attempt.account_failed_before:
            await self.db.write(store.clear, [attempt.account_key])


def _fail(conn: Connection, keys: dict[str, int], policy: ThrottlePolicy) -> float:
    now = datetime.now(UTC)
    forget_before = now - timedelta(seconds=policy.forget_seconds)
    counts = store.add_failure(conn, keys, now, forget_before)
    backoffs = {key: policy.backoff(count, keys[key]) for key, count in counts.items()}
    store.block(conn, {key: now + timedelta(seconds=s) for key, s in backoffs.items() if s > 0})
    store.forget(conn, forget_before, now)
    return max(backoffs.values(), default=0.0)
