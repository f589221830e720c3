"""The Temporal codec server (`POST /codec/encode`, `/codec/decode`) for `ops`.

The Temporal UI ("Codec Server" setting: this API's `/codec`) and the CLI
(`--codec-endpoint .../codec --codec-auth "Bearer <token>"`) send the payloads they show here
and get them back decrypted; only a caller with `codec:use` (ops) sees order data this way.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from google.protobuf import json_format
from pydantic import BaseModel, Field
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


class PayloadJson(BaseModel):
    metadata: dict[str, str] = Field(default_factory=dict, description="Values base64-encoded.")
    data: str = Field(default="", description="base64")


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
