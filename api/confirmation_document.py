"""The order confirmation (订单确认书): what the customer is told will be delivered, when, at
what price and on what terms; as JSON and as a printable HTML page, in Chinese or English.

Built from the order's view: its lines, prices and totals, and the promise made at
confirmation (domain/promise.py). An order without a promise has no confirmation yet.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from jinja2 import Environment, select_autoescape
from pydantic import BaseModel, Field

from domain.money import Money
from domain.orders import DeliveryPolicy, OrderView, net_days

Lang = Literal["en", "zh"]


class ConfirmationLine(BaseModel):
    line_no: int
    sku: str
    name: str
    quantity: int
    list_price: Money
    unit_price: Money
    discount_pct: Money
    amount: Money
    ship_date: date | None = None
    delivery_date: date | None = None
    basis: str | None = None


class OrderConfirmation(BaseModel):
    """The confirmation document's content, in the language asked for."""

    lang: Lang
    title: str
    order_no: str
    revision: int
    customer_id: str
    customer_name: str | None = None
    shipping_address: str | None = None
    confirmed_at: datetime
    currency: str
    lines: list[ConfirmationLine]
    total: Money
    payment_terms: str = Field(description="In words, in the document's language.")
    delivery_policy: str = Field(description="In words, in the document's language.")
    requested_delivery_date: date | None = None
    first_promised_date: date
    promised_date: date
    basis: str
    shipments: list[dict[str, object]] = Field(default_factory=list)
    warning: str | None = None


WORDS: dict[Lang, dict[str, str]] = {
    "en": {
        "title": "Order confirmation",
        "order": "Order",
        "revision": "revision",
        "customer": "Customer",
        "ship_to": "Ship to",
        "confirmed": "Confirmed",
        "line": "Line",
        "sku": "SKU",
        "name": "Product",
        "quantity": "Qty",
        "unit_price": "Unit price",
        "amount": "Amount",
        "delivery": "Delivery",
        "total": "Total",
        "terms": "Terms",
        "payment": "Payment",
        "policy": "Delivery",
        "requested": "Requested delivery date",
        "promised": "Promised delivery date",
        "first_promised": "First promised",
        "basis": "Basis",
        "prepaid": "payment in advance",
        "net": "net {days} days",
        "complete": "complete delivery (one shipment)",
        "partial": "partial deliveries (each shipment on its own date)",
        "none": "(none)",
    },
    "zh": {
        "title": "订单确认书",
        "order": "订单号",
        "revision": "版本",
        "customer": "客户",
        "ship_to": "收货地址",
        "confirmed": "确认时间",
        "line": "行",
        "sku": "物料号",
        "name": "产品",
        "quantity": "数量",
        "unit_price": "单价",
        "amount": "金额",
        "delivery": "交货日期",
        "total": "合计",
        "terms": "条款",
        "payment": "付款",
        "policy": "交货方式",
        "requested": "要求交货日期",
        "promised": "承诺交货日期",
        "first_promised": "首次承诺",
        "basis": "依据",
        "prepaid": "款到发货",
        "net": "月结{days}天",
        "complete": "整单发货",
        "partial": "分批发货 (每批按各自日期)",
        "none": "无",
    },
}


def confirmation_of(view: OrderView, lang: Lang) -> OrderConfirmation | None:
    """The confirmation of an order with a promise; None when it has none (yet)."""
    promise = view.promise
    if promise is None:
        return None
    words = WORDS[lang]
    by_line = {line.line_no: line for line in promise.lines}
    terms = view.payment_terms or "prepaid"
    days = net_days(terms)
    zh = lang == "zh"
    return OrderConfirmation(
        lang=lang,
        title=words["title"],
        order_no=view.order_no,
        revision=view.revision,
        customer_id=view.customer_id,
        customer_name=view.customer_name,
        shipping_address=view.shipping_address,
        confirmed_at=promise.confirmed_at,
        currency=view.currency,
        lines=[
            ConfirmationLine(
                line_no=line.line_no,
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                list_price=line.list_price,
                unit_price=line.unit_price,
                discount_pct=line.discount_pct,
                amount=line.amount,
                ship_date=by_line[line.line_no].ship_date if line.line_no in by_line else None,
                delivery_date=(
                    by_line[line.line_no].delivery_date if line.line_no in by_line else None
                ),
                basis=(
                    (by_line[line.line_no].basis_zh if zh else by_line[line.line_no].basis)
                    if line.line_no in by_line
                    else None
                ),
            )
            for line in view.lines
        ],
        total=view.total,
        payment_terms=words["prepaid"] if days is None else words["net"].format(days=days),
        delivery_policy=words[
            "partial" if view.delivery_policy is DeliveryPolicy.PARTIAL else "complete"
        ],
        requested_delivery_date=view.requested_delivery_date,
        first_promised_date=promise.first_promised_date,
        promised_date=promise.promised_date,
        basis=promise.basis_zh if zh else promise.basis,
        shipments=[s.model_dump(mode="json") for s in promise.shipments],
        warning=promise.warning,
    )


_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_PAGE = _ENV.from_string(
    """<!doctype html>
<html lang="{{ 'zh-CN' if doc.lang == 'zh' else 'en' }}">
<head><meta charset="utf-8"><title>{{ doc.title }} {{ doc.order_no }}</title>
<style>
body { font-family: "WenQuanYi Micro Hei", "Noto Sans CJK SC", sans-serif; margin: 2em; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #999; padding: 4px 8px; text-align: left; }
td.n { text-align: right; }
@media print { body { margin: 0; } }
</style></head>
<body>
<h1>{{ doc.title }}</h1>
<p>{{ w.order }}: <strong>{{ doc.order_no }}</strong> ({{ w.revision }} {{ doc.revision }})<br>
{{ w.customer }}: {{ doc.customer_name or doc.customer_id }} ({{ doc.customer_id }})<br>
{{ w.ship_to }}: {{ doc.shipping_address or w.none }}<br>
{{ w.confirmed }}: {{ doc.confirmed_at.strftime('%Y-%m-%d %H:%M') }} UTC</p>
<table>
<thead><tr><th>{{ w.line }}</th><th>{{ w.sku }}</th><th>{{ w.name }}</th><th>{{ w.quantity }}</th>
<th>{{ w.unit_price }}</th><th>{{ w.amount }}</th><th>{{ w.delivery }}</th><th>{{ w.basis }}</th>
</tr></thead>
<tbody>
{% for line in doc.lines %}<tr><td>{{ line.line_no }}</td><td>{{ line.sku }}</td>
<td>{{ line.name }}</td><td class="n">{{ line.quantity }}</td>
<td class="n">{{ line.unit_price }}</td><td class="n">{{ line.amount }}</td>
<td>{{ line.delivery_date or '' }}</td><td>{{ line.basis or '' }}</td></tr>
{% endfor %}</tbody>
<tfoot><tr><th colspan="5">{{ w.total }} ({{ doc.currency }})</th>
<th class="n">{{ doc.total }}</th><th colspan="2"></th></tr></tfoot>
</table>
<h2>{{ w.terms }}</h2>
<p>{{ w.payment }}: {{ doc.payment_terms }}<br>
{{ w.policy }}: {{ doc.delivery_policy }}<br>
{{ w.requested }}: {{ doc.requested_delivery_date or w.none }}<br>
{{ w.promised }}: <strong>{{ doc.promised_date }}</strong>
({{ w.first_promised }}: {{ doc.first_promised_date }})<br>
{{ w.basis }}: {{ doc.basis }}</p>
{% if doc.warning %}<p><em>{{ doc.warning }}</em></p>{% endif %}
</body></html>
"""
)


def render_html(doc: OrderConfirmation) -> str:
    return _PAGE.render(doc=doc, w=WORDS[doc.lang])
