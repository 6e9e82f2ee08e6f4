"""A trader llama's rules as pure code: which chat lines count, the mood the model's scores mean, and the order
(if any) a mood turns into under the limits of its NPC file. The model proposes a mood; this decides and clamps.

The mood. The model scores one choice between "positive" and "negative" after the recent lines (one forward pass,
templates/trader-mood.toml); the mood is the difference of the two logits, in steps measured on the default
model (SmolLM2-135M Q4_0): cheerful lines ≈ +2.0, neutral ones ≈ +0.5, gloomy ones ≈ −2.0, "BUY!!!" ≈ +0.7.
Asked for a grade 1-5 directly, the same model rated cheerful, gloomy and neutral chat alike (≈ 3.2 each).

Counting. Each player's lines count once per `window_s`, so one player flooding the chat adds one line per
window; the trader reads the mood only after `min_lines` counted lines and `think_every_s` since the last
reading, and it moves at most one order per reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.core.units import UNIT, show
from server.economy.book import LOT, TICK, value

MOODS = {1: "gloomy", 2: "glum", 3: "calm", 4: "cheerful", 5: "jubilant"}
# Logit difference (positive − negative) at or above which each mood starts; below the last: 1.
MOOD_STEPS = ((1.5, 5), (1.0, 4), (-0.5, 3), (-1.2, 2))


def mood_of(scores: dict[str, float] | None) -> int | None:
    """1-5 from the scored choices; None if the model gave no usable answer (no order then)."""
    if not scores or "positive" not in scores or "negative" not in scores:
        return None
    d = float(scores["positive"]) - float(scores["negative"])
    if d != d:  # NaN
        return None
    return next((mood for step, mood in MOOD_STEPS if d >= step), 1)


def counts(last_counted: dict[str, int], player: str, t: int, window_ms: int) -> bool:
    """Whether this line counts: the player's first line in the window (and the window restarts with it)."""
    if t - last_counted.get(player, -10**15) < window_ms:
        return False
    last_counted[player] = t
    return True


@dataclass(frozen=True)
class Risk:
    """The limits of the trader's NPC file ([economy]); amounts in base units."""

    max_order: int
    max_position: int
    orders_per_hour: int
    daily_loss: int
    band_pct: float
    start_price: int

    @classmethod
    def of(cls, economy: dict[str, Any]) -> "Risk":
        return cls(economy["max_order"], economy["max_position"], economy["orders_per_hour"],
                   economy["daily_loss"], economy["band_pct"], economy["start_price"])


@dataclass(frozen=True)
class Holdings:
    war: int
    llama: int
    start_llama: int  # what it held when it started trading: its position is measured from here
    day_value: int  # its holdings' worth in wAR at the start of today (at that day's price)
    orders_last_hour: int


@dataclass(frozen=True)
class Decision:
    mood: int | None
    side: str | None  # None: no order
    price: int
    quantity: int
    why: str  # the one public line

    @property
    def order(self) -> dict[str, Any] | None:
        return None if self.side is None else {"Side": self.side, "Price": self.price, "Quantity": self.quantity}


def on_tick(price: float) -> int:
    return max(TICK, int(price) // TICK * TICK)


def worth(h: Holdings, price: int) -> int:
    return h.war + value(price, h.llama)


def decide(mood: int | None, last: int | None, best_bid: int | None, best_ask: int | None, h: Holdings,
           risk: Risk) -> Decision:
    """The order a mood turns into, or none, with the line that explains it. Buys at the best ask, sells at the
    best bid, but never beyond the band around the last trade (a resting order at the band's edge instead);
    size by how far the mood is from calm, clamped by the order size, the position, and what it holds."""
    ref = last or risk.start_price
    if mood is None:
        return Decision(None, None, 0, 0, "I could not read the mood just now; no trade.")
    name = f"Chat is {MOODS[mood]} ({mood}/5)"
    if worth(h, ref) < h.day_value - risk.daily_loss:
        return Decision(mood, None, 0, 0, f"{name}, but I have lost my limit for today: no more trades until "
                                          f"tomorrow.")
    if h.orders_last_hour >= risk.orders_per_hour:
        return Decision(mood, None, 0, 0, f"{name}: I have traded enough this hour.")
    if mood == 3:
        return Decision(mood, None, 0, 0, f"{name}: I hold.")
    band = ref * risk.band_pct / 100
    strength = abs(mood - 3) / 2  # 4 or 2: half an order; 5 or 1: a whole one
    size = int(risk.max_order * strength) // LOT * LOT
    if mood > 3:
        price = on_tick(min(best_ask, ref + band) if best_ask is not None else ref)
        room = risk.max_position - (h.llama - h.start_llama)
        afford = h.war * UNIT // price // LOT * LOT
        qty = min(size, max(room, 0) // LOT * LOT, afford)
        verb, have = "buying", qty > 0
    else:
        price = on_tick(max(best_bid, ref - band) if best_bid is not None else ref)
        room = risk.max_position + (h.llama - h.start_llama)
        qty = min(size, max(room, 0) // LOT * LOT, h.llama // LOT * LOT)
        verb, have = "selling", qty > 0
    if not have:
        return Decision(mood, None, 0, 0, f"{name}, but my limits leave nothing to trade.")
    return Decision(mood, "buy" if mood > 3 else "sell", price, qty,
                    f"{name}: {verb} {show(qty)} LLAMA at {show(price)} wAR")
