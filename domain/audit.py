"""The audit chain's seal: keyed MACs linking its entries, and signed checkpoints of its head.

Each entry's `hash` is HMAC-SHA256 under a secret key (`AUDIT_KEYS`, chosen by `key_id`) of
its content, its `seq`, its key id and the `hash` of the entry before it. Whoever can write the
database but lacks the key cannot change, insert or remove an entry without a hash that shows
it. Entries written before keys (`key_id` "") carry the plain SHA-256 of the same chain; they
may only begin the chain, no further than the count the verifier was told
(`AUDIT_LEGACY_ENTRIES`: else a writer could re-hash the whole chain as such entries), and the
first keyed entry's MAC covers the last of them.

Truncating the chain's end leaves no broken link: a checkpoint of its head (`AuditCheckpoint`),
signed with the key and kept outside the database (the audit anchor workflow, an exported
file), shows it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

GENESIS = "0" * 64  # the `prev_hash` of entry 1
LEGACY = ""  # the key id of entries chained before keys: plain SHA-256
MAX_KEY_ID = 32
MIN_SECRET = 32
DEVELOPMENT_KEYS = {"dev-1": "development-only-audit-chain-key-change-me"}  # public


def _canonical(content: Mapping[str, Any]) -> bytes:
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def _content(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: entry[name]
        for name in ("id", "seq", "order_no", "action", "actor", "role", "source", "outcome")
    } | {"detail": entry["detail"]}


def legacy_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """The plain SHA-256 link of the entries written before keys (exactly as they were)."""
    content = _content(entry) | {"at": entry["at"].isoformat()}
    return hashlib.sha256(prev_hash.encode() + _canonical(content)).hexdigest()


@dataclass(frozen=True)
class AuditSeal:
    """The audit keys by key id, and the one that seals new entries and checkpoints (rotation:
    add a key, make it active, keep the old ones: every entry names the key that sealed it);
    and how many entries from before keys the chain begins with, at most."""

    keys: Mapping[str, bytes]
    key_id: str
    legacy_entries: int = 0

    def __post_init__(self) -> None:
        for key_id, key in self.keys.items():
            if not 0 < len(key_id) <= MAX_KEY_ID:
                raise ValueError(f"an audit key id has 1 to {MAX_KEY_ID} characters: {key_id!r}")
            if len(key) < MIN_SECRET:
                raise ValueError(f"audit key {key_id!r} is shorter than {MIN_SECRET} bytes")
        if self.key_id not in self.keys:
            raise ValueError(f"the active audit key {self.key_id!r} is not among the keys")

    @classmethod
    def of(cls, secrets: Mapping[str, str], key_id: str, legacy_entries: int = 0) -> AuditSeal:
        """From settings: secrets as text (e.g. `openssl rand -base64 32`)."""
        keys = {name: secret.encode() for name, secret in secrets.items()}
        return cls(keys, key_id, legacy_entries)

    @classmethod
    def development(cls) -> AuditSeal:
        return cls.of(DEVELOPMENT_KEYS, "dev-1")

    def link(self, prev_hash: str, entry: Mapping[str, Any], key_id: str) -> str | None:
        """The `hash` an entry sealed with `key_id` carries (None: no such key here)."""
        if key_id == LEGACY:
            return legacy_hash(prev_hash, entry)
        key = self.keys.get(key_id)
        if key is None:
            return None
        content = _content(entry) | {
            "at": entry["at"].astimezone(UTC).isoformat(),
            "key_id": key_id,
            "prev_hash": prev_hash,
        }
        return hmac.new(key, _canonical(content), hashlib.sha256).hexdigest()

    def seal(self, prev_hash: str, entry: Mapping[str, Any]) -> str:
        """A new entry's `hash`, with the active key."""
        sealed = self.link(prev_hash, entry, self.key_id)
        assert sealed is not None  # the active key is one of the keys
        return sealed

    def _sign(self, key_id: str, seq: int, hash_: str, at: datetime) -> str | None:
        key = self.keys.get(key_id)
        if key is None:
            return None
        content = {"checkpoint": {"seq": seq, "hash": hash_, "at": at.astimezone(UTC).isoformat()}}
        return hmac.new(key, _canonical(content | {"key_id": key_id}), hashlib.sha256).hexdigest()

    def checkpoint(self, seq: int, hash_: str, at: datetime) -> AuditCheckpoint:
        """A signed statement: at `at`, the chain's last entry was `seq`, with `hash_`."""
        signature = self._sign(self.key_id, seq, hash_, at)
        assert signature is not None
        return AuditCheckpoint(seq=seq, hash=hash_, at=at, key_id=self.key_id, signature=signature)

    def signed(self, checkpoint: AuditCheckpoint) -> bool:
        """Whether `checkpoint` was signed with one of these keys."""
        expected = self._sign(checkpoint.key_id, checkpoint.seq, checkpoint.hash, checkpoint.at)
        return expected is not None and hmac.compare_digest(
            expected.encode(), checkpoint.signature.encode()
        )


def _well_formed(entry: Mapping[Any, Any]) -> bool:
    return (
        isinstance(entry["seq"], int)
        and not isinstance(entry["seq"], bool)
        and all(isinstance(entry[name], str) for name in ("key_id", "hash", "prev_hash"))
    )


def problem(
    seal: AuditSeal, entry: Mapping[Any, Any], prev: Mapping[Any, Any] | None
) -> str | None:
    """Why `entry` (a row of the chain) would not verify, None when it does.

    `prev` is the row whose `seq` is one less (None when there is none). Checking each entry
    against the one before it checks the whole chain: a link per pair, and the unkeyed entries
    only at its start."""
    seq, key_id = entry["seq"], entry["key_id"]
    if not _well_formed(entry):  # SQLite keeps whatever type a writer gives a column
        return "not well formed: its seq, key id or hashes are of the wrong type"
    if seq < 1:
        return f"seq {seq}: the chain starts at 1"
    if key_id == LEGACY and seq > seal.legacy_entries:
        return f"unkeyed (plain SHA-256), past the {seal.legacy_entries} entries from before keys"
    expected = seal.link(entry["prev_hash"], entry, key_id)
    if expected is None:
        return f"sealed with an unknown audit key {key_id!r}"
    if not hmac.compare_digest(expected.encode(), entry["hash"].encode()):
        return "its hash does not match its content: altered, or sealed with another key"
    if seq == 1:
        return None if entry["prev_hash"] == GENESIS else "the first entry does not start the chain"
    if prev is None:
        return f"entry {seq - 1} before it is missing"
    if prev["hash"] != entry["prev_hash"]:
        return f"not linked to entry {seq - 1} (its prev_hash is not that entry's hash)"
    if key_id == LEGACY and prev["key_id"] != LEGACY:
        return "an unkeyed (plain SHA-256) entry after keyed ones"
    return None


class AuditCheckpoint(BaseModel):
    """The chain's head at a time, signed with an audit key: the audit anchor keeps these."""

    seq: int = Field(ge=0, description="The last entry's seq (0: the chain was empty).")
    hash: str
    at: datetime
    key_id: str
    signature: str


class AuditAnchorInput(BaseModel):
    interval_seconds: float = Field(gt=0)
    rounds_per_run: int = Field(default=500, ge=1, description="Then it continues as new.")
    checkpoints: list[AuditCheckpoint] = Field(default_factory=list)
    disputed: list[AuditCheckpoint] = Field(default_factory=list)


class CheckpointAuditInput(BaseModel):
    """The anchor's last checkpoint, for the activity to say whether the chain still has it."""

    last: AuditCheckpoint | None = None


class CheckpointAuditResult(BaseModel):
    checkpoint: AuditCheckpoint
    last_still_holds: bool = True
