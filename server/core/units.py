"""Base units: every amount of wAR or LLAMA is an integer count of 10**-12 tokens, everywhere in the code.

Amounts are parsed from people's decimals ("2.5", 0.125 in a TOML file) with `Decimal`, never floats, so a value
either converts exactly or is refused; `show` is the one way amounts are printed back.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

DECIMALS = 12
UNIT = 10**DECIMALS
TOKENS = ("wAR", "LLAMA")  # the world's two tokens: wAR (its currency) and LLAMA (minted by the Fed)


def parse_amount(value: Any) -> int:
    """'2.5' (or 2.5, or 2) whole tokens -> base units. Raises ValueError unless it is a number with at most
    DECIMALS decimals (the sign is the caller's to check)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise ValueError(f"not an amount: {value!r}")
    try:
        scaled = Decimal(str(value).strip()) * UNIT
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        raise ValueError(f"an amount has at most {DECIMALS} decimals, got {value!r}")
    return int(scaled)


def show(amount: int) -> str:
    """Base units as a short decimal: 2500000000000 -> '2.5', 10**12 -> '1', 1 -> '0.000000000001'."""
    text = f"{Decimal(amount) / UNIT:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
