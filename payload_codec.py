"""Order data in Temporal histories is encrypted: AES-256-GCM, keys chosen by key id.

Every payload the API and the worker hand to Temporal (workflow inputs, update arguments and
results, activity inputs and results, query answers) is sealed with the active key; its id
travels in the payload's metadata, so rotating keys is: add the new key, make it active, keep
the old ones until no open history needs them. Payloads that are not encrypted (histories from
before, or another client's) pass through untouched.

Local activities' inputs are not sealed either: they never leave the worker process (the SDK
hands them from the workflow to the activity in memory; the history keeps only a local
activity's result, which is sealed), so sealing them cost CPU and protected nothing. The
converter marks them `in-clear: local-activity-input` while a workflow converts them.

The other exception is what the Temporal UI shows of a workflow in its own fields: the workflow's
summary (`UiText`) and its current details (the answer to the SDK's metadata query). Ops read
those without the key (the dev UI has no token to call our codec server with), so they stay in
the clear, marked `in-clear: ui-metadata`. They may hold only what the search attributes already
show in plain text (order number, customer id, total, status, escalation level) and which step
an order waits for: never a name, a price, an address or a person's free text.

A payload is compressed (zlib) before it is sealed when that makes it smaller: the order views
the updates return are JSON that shrinks to a third, which halves an order's history (what the
Temporal server writes, sends and keeps until retention). The compressed form is itself a
payload (`binary/zlib`) inside the seal, so it is authenticated with the rest, and payloads
sealed before are opened as they were.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    EncodingPayloadConverter,
    PayloadCodec,
    SerializationContext,
)

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
# Metadata marking a payload the codec leaves readable on purpose (see the module docstring).
IN_CLEAR = "in-clear"
UI_METADATA = b"ui-metadata"
LOCAL_ACTIVITY_INPUT = b"local-activity-input"
_LEFT_IN_CLEAR = (UI_METADATA, LOCAL_ACTIVITY_INPUT)
COMPRESSED = b"binary/zlib"
# Smaller payloads (ids, amounts, short commands) rarely shrink enough to pay for the header.
COMPRESS_FROM_BYTES = 256
# A bound against a decompression bomb, far above anything we seal: Temporal refuses a payload
# over 2 MiB as stored (compressed), and order JSON shrinks to a third.
MAX_OPENED_BYTES = 64 * 1024 * 1024


class UiText(str):
    """Text for the Temporal UI's own fields (a workflow's `static_summary`): readable there
    without the key. Only what the search attributes already show belongs in it."""


class OrdersPayloadConverter(PydanticPayloadConverter):
    """The pydantic JSON converter, marking the UI's metadata to stay in the clear: a
    `UiText`, and the workflow's metadata (its current details), which the SDK answers the UI's
    `__temporal_workflow_metadata` query with. Everything else is left for the codec to seal.

    The SDK makes a new payload converter for every workflow activation it decodes or encodes,
    and each new pydantic converter starts with an empty cache of type adapters. Every instance
    here shares the first one's converters (stateless but for that cache, which is thread-safe):
    a type adapter is built once per process, not once per activation."""

    _shared: ClassVar[Mapping[bytes, EncodingPayloadConverter] | None] = None
    _marking: ClassVar[OrdersPayloadConverter | None] = None  # for local activities' inputs

    def __init__(self) -> None:
        shared = OrdersPayloadConverter._shared
        if shared is None:
            super().__init__()
            OrdersPayloadConverter._shared = self.converters
        else:
            self.converters = shared
        self._local_activity_input = False

    def with_context(self, context: SerializationContext) -> Self:
        """In a workflow, a local activity's converter writes its inputs (module docstring);
        the activity's worker, which converts its result, gets the plain converter."""
        if (
            isinstance(context, ActivitySerializationContext)
            and context.is_local
            and workflow.in_workflow()
        ):
            marking = OrdersPayloadConverter._marking
            if marking is None:  # one for the process: it holds nothing but the mark
                marking = OrdersPayloadConverter._marking = OrdersPayloadConverter()
                marking._local_activity_input = True
            return marking  # type: ignore[return-value]
        return super().with_context(context)

    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        payloads = super().to_payloads(values)
        for value, payload in zip(values, payloads, strict=True):
            if self._local_activity_input:
                payload.metadata[IN_CLEAR] = LOCAL_ACTIVITY_INPUT
            elif isinstance(value, UiText | WorkflowMetadata):
                payload.metadata[IN_CLEAR] = UI_METADATA
        return payloads


class CodecError(ValueError):
    """A payload that cannot be decrypted: unknown key id, or altered / not ours."""


def parse_keys(keys: Mapping[str, str]) -> dict[str, bytes]:
    """Key ids to 32-byte keys, given base64-encoded (e.g. `openssl rand -base64 32`)."""
    parsed: dict[str, bytes] = {}
    for key_id, text in keys.items():
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"payload key {key_id!r} is not base64") from exc
        if len(key) != 32:
            raise ValueError(f"payload key {key_id!r} must be 32 bytes (AES-256), not {len(key)}")
        parsed[key_id] = key
    return parsed


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        if active not in keys:
            raise ValueError(f"the active payload key {active!r} is not among the keys")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active = active

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            payload if payload.metadata.get(IN_CLEAR) in _LEFT_IN_CLEAR else self.seal(payload)
            for payload in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.open(payload) for payload in payloads]

    def seal(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        key_id = self._active.encode()
        # The key id is authenticated too: a payload cannot be re-labelled to another key.
        sealed = self._ciphers[self._active].encrypt(nonce, compress(payload), key_id)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id}, data=nonce + sealed)

    def open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"")
        cipher = self._ciphers.get(key_id.decode(errors="replace"))
        if cipher is None:
            raise CodecError(f"no payload key with id {key_id.decode(errors='replace')!r}")
        if len(payload.data) <= NONCE_BYTES:
            raise CodecError("the payload is too short to be sealed")
        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id)
        except InvalidTag as exc:
            raise CodecError("the payload was altered or sealed with another key") from exc
        try:
            opened = Payload.FromString(plain)
            if opened.metadata.get("encoding") == COMPRESSED:
                opened = Payload.FromString(decompress(opened.data))
        except DecodeError as exc:  # authentic but not a payload: sealed by something else
            raise CodecError("the sealed content is not a Temporal payload") from exc
        return opened


def compress(payload: Payload) -> bytes:
    """The serialized payload, or a `binary/zlib` payload holding it when that is smaller."""
    plain = payload.SerializeToString()
    if len(plain) < COMPRESS_FROM_BYTES:
        return plain
    packed = Payload(
        metadata={"encoding": COMPRESSED}, data=zlib.compress(plain)
    ).SerializeToString()
    return packed if len(packed) < len(plain) else plain


def decompress(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        plain = inflater.decompress(data, MAX_OPENED_BYTES)
    except zlib.error as exc:
        raise CodecError("the sealed content is not valid zlib") from exc
    if inflater.unconsumed_tail or not inflater.eof:
        raise CodecError(
            f"the sealed content is truncated or opens to over {MAX_OPENED_BYTES} bytes"
        )
    return plain


def data_converter(codec: EncryptionCodec | None) -> DataConverter:
    """Pydantic models as JSON payloads, sealed by `codec` when given (but the UI's metadata)."""
    return dataclasses.replace(
        pydantic_data_converter, payload_converter_class=OrdersPayloadConverter, payload_codec=codec
    )
