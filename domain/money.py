"""Money and quantities: exact decimals inside, JSON numbers at the edges."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import PlainSerializer

CENT = Decimal("0.01")
# Far above any real order, far below what a 64-bit count of cents holds (9.2e16 units).
MAX_ORDER_TOTAL = Decimal(10) ** 13
# Units of one SKU: within a 32-bit integer column on every database.
MAX_STOCK = 1_000_000_000


def round_money(value: Decimal) -> Decimal:
    """Round to cents, half up, as invoices do."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def as_number(value: Decimal) -> float | int:
    """An amount as a JSON number (amounts are cents, far inside a double's exact range)."""
    return int(value) if value == value.to_integral_value() else float(value)


Money = Annotated[Decimal, PlainSerializer(as_number, when_used="json")]
"""An amount of money: a Decimal in Python, a plain number in JSON."""
