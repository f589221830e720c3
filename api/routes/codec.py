"""The Temporal codec server (`POST /codec/encode`, `/codec/decode`) for `ops`.

The Temporal UI ("Codec Server" setting: this API's `/codec`) and the CLI
(`--codec-endpoint .../codec --codec-auth "Bearer <token>"`) send the payloads they show here
and get them back decrypted; only a caller with `codec:use` (ops) sees order data this way.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Request
from google.protobuf import json_format
from pydantic import AfterValidator, BaseModel, Field
from temporalio.api.common.v1 import Payloads

from api.auth import allowed
from api.errors import ProblemDetails, ProblemError
from api.principal import Principal
from domain.auth import Permission
from payload_codec import CodecError, EncryptionCodec

router = APIRouter(prefix="/codec", tags=["codec"])
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetails} for status in (401, 403, 409, 413, 422)
}
Ops = Annotated[Principal, allowed(Permission.CODEC_USE)]


def _base64(text: str) -> str:
    """Refuse what is not base64 (protobuf's JSON parser would drop the bad characters and
    decode what is left: an empty or a different payload, answered with 200)."""
    standard = text.replace("-", "+").replace("_", "/")  # URL-safe is base64 to protobuf too
    try:
        base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64") from exc
    return text


Base64 = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9+/_-]*={0,2}$", description="base64"),
    AfterValidator(_base64),
]


class PayloadJson(BaseModel):
    metadata: dict[str, Base64] = Field(default_factory=dict, description="Values base64-encoded.")
    data: Base64 = ""


class PayloadsJson(BaseModel):
    """Temporal's protobuf JSON form of `Payloads`."""

    payloads: list[PayloadJson] = Field(default_factory=list, max_length=10_000)


def _codec(request: Request) -> EncryptionCodec:
    codec: EncryptionCodec | None = request.app.state.settings.payload_codec()
    if codec is None:
        raise ProblemError(409, "Payload encryption is off (ENCRYPT_PAYLOADS=false)")
    return codec


def _parse(body: PayloadsJson) -> Payloads:
    try:
        return json_format.ParseDict(body.model_dump(), Payloads())
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise ProblemError(422, f"Not Temporal payloads: {exc}") from exc


def _render(payloads: list[Any]) -> PayloadsJson:
    return PayloadsJson.model_validate(json_format.MessageToDict(Payloads(payloads=payloads)))


@router.post("/decode", responses=ERRORS)
async def decode(body: PayloadsJson, request: Request, _: Ops) -> PayloadsJson:
    """Decrypt payloads sealed by this service; others come back unchanged."""
    codec = _codec(request)
    try:
        return _render(await codec.decode(list(_parse(body).payloads)))
    except CodecError as exc:
        raise ProblemError(422, str(exc)) from exc


@router.post("/encode", responses=ERRORS)
async def encode(body: PayloadsJson, request: Request, _: Ops) -> PayloadsJson:
    """Seal payloads with the active key (e.g. a signal sent from the UI)."""
    return _render(await _codec(request).encode(list(_parse(body).payloads)))
