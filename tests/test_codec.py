"""Order data in Temporal histories is sealed (AES-GCM by key id); ops read it via /codec."""

from __future__ import annotations

import base64
import json
import os
import zlib
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import Message
from pydantic import BaseModel
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client
from temporalio.common import RawValue
from temporalio.converter import ActivitySerializationContext

import payload_codec
from payload_codec import (
    COMPRESSED,
    ENCODING,
    IN_CLEAR,
    KEY_ID,
    NONCE_BYTES,
    CodecError,
    EncryptionCodec,
    UiText,
    data_converter,
    parse_keys,
)
from tests.auth import bearer, token_for
from tests.helpers import Factory, submit_ok
from tests.scenarios import auto_approved
from tests.test_auth import PASSWORD, new_user


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


async def test_keys_rotate_by_id_and_tampering_is_detected() -> None:
    old, new = key(), key()
    before = EncryptionCodec(parse_keys({"k1": old}), "k1")
    after = EncryptionCodec(parse_keys({"k1": old, "k2": new}), "k2")
    sealed_before = (await before.encode([plain('{"total": 1234.5}')]))[0]
    sealed_after = (await after.encode([plain('{"total": 99}')]))[0]
    assert sealed_before.metadata["encoding"] == ENCODING
    assert (sealed_before.metadata[KEY_ID], sealed_after.metadata[KEY_ID]) == (b"k1", b"k2")
    assert b"1234" not in sealed_before.data
    # The rotated codec still opens what the old key sealed; the old one cannot open the new.
    opened = await after.decode([sealed_before, sealed_after, plain("as is")])
    assert [p.data for p in opened] == [b'{"total": 1234.5}', b'{"total": 99}', b"as is"]
    with pytest.raises(CodecError, match="k2"):
        await before.decode([sealed_after])
    altered = Payload()
    altered.CopyFrom(sealed_before)
    altered.data = altered.data[:-1] + bytes([altered.data[-1] ^ 1])
    with pytest.raises(CodecError, match="altered"):
        await after.decode([altered])
    relabelled = Payload()
    relabelled.CopyFrom(sealed_before)
    relabelled.metadata[KEY_ID] = b"k2"
    with pytest.raises(CodecError):
        await after.decode([relabelled])
    with pytest.raises(ValueError, match="32 bytes"):
        parse_keys({"short": base64.b64encode(b"short").decode()})


async def test_large_payloads_are_compressed_inside_the_seal() -> None:
    codec = EncryptionCodec(parse_keys({"k1": key()}), "k1")
    view = json.dumps(
        {
            "timeline": [
                {"event": "shipment_dispatched", "actor": "warehouse", "n": i} for i in range(60)
            ]
        }
    )
    small = plain('{"total": 12}')
    sealed_view, sealed_small = await codec.encode([plain(view), small])
    assert len(sealed_view.data) < len(view) / 3  # an order view shrinks to a third or less
    assert sealed_view.metadata["encoding"] == ENCODING
    assert len(sealed_small.data) == NONCE_BYTES + small.ByteSize() + 16  # not worth it: as is
    opened = await codec.decode([sealed_view, sealed_small])
    assert [p.data for p in opened] == [view.encode(), small.data]
    assert opened[0].metadata["encoding"] == b"json/plain"


def _seal_raw(secret: str, content: bytes) -> Payload:
    """Sealed like the codec does, around content the codec itself would never produce."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(base64.b64decode(secret)).encrypt(nonce, content, b"k1")
    return Payload(metadata={"encoding": ENCODING, KEY_ID: b"k1"}, data=nonce + sealed)


async def test_a_sealed_payload_that_does_not_decompress_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(payload_codec, "MAX_OPENED_BYTES", 64 * 1024)  # the bound, made small
    secret = key()
    codec = EncryptionCodec(parse_keys({"k1": secret}), "k1")
    inner = plain("x" * (payload_codec.MAX_OPENED_BYTES + 1)).SerializeToString()
    bomb = Payload(metadata={"encoding": COMPRESSED}, data=zlib.compress(inner, 9))
    garbage = Payload(metadata={"encoding": COMPRESSED}, data=b"not zlib at all")
    truncated = Payload(metadata={"encoding": COMPRESSED}, data=zlib.compress(inner)[:-8])
    with pytest.raises(CodecError, match="over"):
        await codec.decode([_seal_raw(secret, bomb.SerializeToString())])
    with pytest.raises(CodecError, match="not valid zlib"):
        await codec.decode([_seal_raw(secret, garbage.SerializeToString())])
    with pytest.raises(CodecError, match="truncated"):
        await codec.decode([_seal_raw(secret, truncated.SerializeToString())])


async def test_histories_hold_no_plain_order_data_and_ops_decode_them(
    api: httpx.AsyncClient,
    temporal_client: Client,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    customer = await new_customer(name="Secret Trading Co")
    product = await new_product()
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 7, "unit_price": 4321}],
        notes="confidential pricing",
    )
    handle = temporal_client.get_workflow_handle(order["workflow_id"])
    history = await handle.fetch_history()
    raw = history.to_json()
    for secret in ("confidential pricing", "4321", "Secret Trading"):
        assert secret not in raw
    started = next(
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    )
    sealed = started.workflow_execution_started_event_attributes.input.payloads[0]
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID] == b"test-1"

    body = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in sealed.metadata.items()},
                "data": base64.b64encode(sealed.data).decode(),
            }
        ]
    }
    ops = bearer(await token_for(api, await new_user(api, "ops"), PASSWORD))
    decoded = await api.post("/codec/decode", json=body, headers=ops)
    assert decoded.status_code == 200, decoded.text
    payload = decoded.json()["payloads"][0]
    workflow_input = json.loads(base64.b64decode(payload["data"]))
    assert workflow_input["order_no"] == order["order_no"]
    assert workflow_input["request"]["notes"] == "confidential pricing"
    # Encode then decode round-trips (the UI encodes what it sends).
    encoded = await api.post("/codec/encode", json={"payloads": [payload]}, headers=ops)
    assert encoded.json()["payloads"][0]["data"] != payload["data"]
    again = await api.post("/codec/decode", json=encoded.json(), headers=ops)
    assert again.json()["payloads"][0]["data"] == payload["data"]

    # Nobody else decodes: no token, another role.
    assert (
        await api.post("/codec/decode", json=body, headers={"Authorization": ""})
    ).status_code == 401
    sales = bearer(await token_for(api, await new_user(api, "sales"), PASSWORD))
    refused = await api.post("/codec/decode", json=body, headers=sales)
    assert refused.status_code == 403 and refused.json()["permission"] == "codec:use"
    # Garbage is a 422, never a 500.
    bad = {
        "payloads": [
            {"metadata": {"encoding": base64.b64encode(ENCODING).decode()}, "data": "AAAA"}
        ]
    }
    assert (await api.post("/codec/decode", json=bad, headers=ops)).status_code == 422


async def test_the_temporal_ui_may_call_the_codec_from_the_browser(api: httpx.AsyncClient) -> None:
    preflight = await api.options(
        "/codec/decode",
        headers={
            "Origin": "http://127.0.0.1:8233",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://127.0.0.1:8233"
    elsewhere = await api.options(
        "/codec/decode",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in elsewhere.headers


class _Secret(BaseModel):
    note: str


async def test_only_the_uis_own_metadata_stays_in_the_clear() -> None:
    converter = data_converter(EncryptionCodec(parse_keys({"k1": key()}), "k1"))
    summary, text, model, metadata = await converter.encode(
        [
            UiText("Order SO-1 · customer C-1 · total 10.00"),
            "Order SO-1 · customer C-1 · total 10.00",  # the same text, not marked: sealed
            _Secret(note="confidential"),
            WorkflowMetadata(current_details="**Pending approval**"),
        ]
    )
    assert summary.metadata["encoding"] == b"json/plain" and IN_CLEAR in summary.metadata
    assert "customer C-1" in summary.data.decode()
    assert metadata.metadata["encoding"] == b"json/protobuf" and IN_CLEAR in metadata.metadata
    for sealed in (text, model):
        assert sealed.metadata["encoding"] == ENCODING and IN_CLEAR not in sealed.metadata
    assert await converter.decode([summary, text, model], [str, str, _Secret]) == [
        "Order SO-1 · customer C-1 · total 10.00",
        "Order SO-1 · customer C-1 · total 10.00",
        _Secret(note="confidential"),
    ]


def _payloads(message: Message) -> Iterator[Payload]:
    """Every payload inside a protobuf message, at any depth."""
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if isinstance(value, Message):
            items = [value]
        elif hasattr(value, "values"):  # a map
            items = [v for v in value.values() if isinstance(v, Message)]
        else:
            items = list(value)
        for item in items:
            if isinstance(item, Payload):
                yield item
            else:
                yield from _payloads(item)


async def test_an_orders_whole_history_is_sealed_but_the_uis_metadata(
    api: httpx.AsyncClient, temporal_client: Client, new_customer: Factory, new_product: Factory
) -> None:
    """Local activities' inputs go unsealed from the workflow to the activity, in memory: none
    of them, and nothing else but the search attributes' values and the UI's own metadata,
    reaches the history in the clear; their results are sealed."""
    workflow_id = await auto_approved(api, new_customer, new_product)
    history = await temporal_client.get_workflow_handle(workflow_id).fetch_history()
    marker = EventType.EVENT_TYPE_MARKER_RECORDED
    payloads = [
        p for event in history.events if event.event_type != marker for p in _payloads(event)
    ]
    # A marker's other details are the SDK's own (a patch's id, an activity's type and times).
    results = [
        e.marker_recorded_event_attributes.details["result"]
        for e in history.events
        if e.event_type == marker and "result" in e.marker_recorded_event_attributes.details
    ]
    assert len(results) == 15 and len(payloads) > 10  # 15 local activities, confirmation too
    payloads += [p for result in results for p in result.payloads]
    for payload in payloads:
        if "type" in payload.metadata:  # a search attribute's value: for visibility, in the clear
            continue
        if payload.metadata.get("encoding") != ENCODING:
            assert payload.metadata.get(IN_CLEAR) == b"ui-metadata", payload


async def test_a_local_activitys_result_is_sealed_its_input_only_in_a_workflow() -> None:
    converter = data_converter(EncryptionCodec(parse_keys({"k1": key()}), "k1"))
    context = ActivitySerializationContext(
        namespace="default",
        activity_id="1",
        activity_type="save_order_view",
        activity_task_queue="orders",
        workflow_id="order-SO-1",
        workflow_type="OrderWorkflow",
        is_local=True,
    )
    # Outside a workflow (the activity's worker encoding its result): sealed.
    (result,) = await converter.with_context(context).encode([_Secret(note="confidential")])
    assert result.metadata["encoding"] == ENCODING and IN_CLEAR not in result.metadata
    # The codec leaves a payload the workflow's converter marked as a local activity's input.
    marked = plain('"confidential"')
    marked.metadata[IN_CLEAR] = payload_codec.LOCAL_ACTIVITY_INPUT
    assert await EncryptionCodec(parse_keys({"k1": key()}), "k1").encode([marked]) == [marked]


async def test_the_temporal_ui_reads_summary_and_current_details_without_the_key(
    api: httpx.AsyncClient,
    temporal_client: Client,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    customer = await new_customer(name="Secret Trading Co")
    product = await new_product()
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 3, "unit_price": 4321}],
        notes="confidential pricing",
        priority="rush",  # waits for a supervisor: current details name the step
    )
    assert order["status"] == "PENDING_APPROVAL"
    # What the Temporal UI without a codec server (or anyone reading the server) sees.
    keyless = Client(temporal_client.service_client, namespace=temporal_client.namespace)
    handle = keyless.get_workflow_handle(order["workflow_id"])
    description = await handle.describe()
    raw_summary = description.raw_description.execution_config.user_metadata.summary
    assert raw_summary.metadata["encoding"] == b"json/plain"
    assert await description.static_summary() == (
        f"Order {order['order_no']} · customer {customer['customer_id']} · total 12963.00"
    )
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert "Pending approval (待审核)" in metadata.current_details
    assert "approval by level 1 (supervisor)" in metadata.current_details
    # Nothing else is readable: the input in the history, and every other query's answer.
    history = await handle.fetch_history()
    started = next(
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    )
    sealed = started.workflow_execution_started_event_attributes.input.payloads[0]
    assert sealed.metadata["encoding"] == ENCODING and IN_CLEAR not in sealed.metadata
    view = await handle.query("view", result_type=RawValue)
    assert view.payload.metadata["encoding"] == ENCODING
    in_clear = f"{await description.static_summary()} {metadata}"
    for secret in ("Secret Trading", "confidential", "4321"):
        assert secret not in in_clear


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"data": "not base64!"}, "payloads[0].data"),
        ({"data": "QUJD$"}, "payloads[0].data"),
        ({"data": "A"}, "payloads[0].data"),  # base64's alphabet, not base64
        ({"metadata": {"encoding": "@@@@"}, "data": ""}, "payloads[0].metadata.encoding"),
    ],
)
async def test_what_is_not_base64_is_a_422_not_an_empty_payload(
    api: httpx.AsyncClient, payload: dict[str, object], field: str
) -> None:
    ops = bearer(await token_for(api, await new_user(api, "ops"), PASSWORD))
    for operation in ("/codec/decode", "/codec/encode"):
        response = await api.post(operation, json={"payloads": [payload]}, headers=ops)
        assert response.status_code == 422, response.text
        assert {e["field"] for e in response.json()["errors"]} == {field}
    # Standard and URL-safe base64, padded or not, is what protobuf's JSON reads: taken.
    for data in ("QUJD", "QUI=", "QUI", "-_-_", ""):
        good = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": data}]}
        response = await api.post("/codec/decode", json=good, headers=ops)
        assert response.status_code == 200, (data, response.text)
