"""The market's price chart: the last hour's one-minute closes as a line, your open orders as horizontal lines
(green bids, red asks) and a trader llama's own trades as dots (green she bought, red she sold)."""

from __future__ import annotations

import arcade
from arcade.gui import UIWidget

BID, ASK, LINE = (90, 200, 110), (220, 90, 90), (235, 200, 80)


class PriceChart(UIWidget):
    """Closes, your orders' prices and the trader's trades, scaled to fit; redrawn when the data changes."""

    def __init__(self, width: int = 380, height: int = 120):
        super().__init__(width=width, height=height)
        self.with_background(color=(12, 16, 28, 255))
        self.closes: list[tuple[int, int]] = []  # (t, price)
        self.orders: list[tuple[str, int]] = []  # (side, price)
        self.marks: list[tuple[int, int, str]] = []  # (t, price, side the trader took)

    def update(self, closes=None, orders=None, marks=None) -> None:
        if closes is not None:
            self.closes = closes
        if orders is not None:
            self.orders = orders
        if marks is not None:
            self.marks = marks
        self.trigger_render()

    def do_render(self, surface) -> None:
        self.prepare_render(surface)
        w, h = self.content_width, self.content_height
        prices = [p for _, p in self.closes] + [p for _, p in self.orders] + [p for _, p, _ in self.marks]
        if not prices:
            return
        lo, hi = min(prices), max(prices)
        pad = max((hi - lo) // 10, 1)
        lo, hi = lo - pad, hi + pad
        times = [t for t, _ in self.closes] + [t for t, _, _ in self.marks]
        t0, t1 = (min(times), max(times)) if times else (0, 1)
        span = max(t1 - t0, 1)

        def y(p: int) -> float:
            return 6 + (h - 12) * (p - lo) / (hi - lo)

        def x(t: int) -> float:
            return 6 + (w - 12) * (t - t0) / span

        for side, p in self.orders:
            arcade.draw_line(0, y(p), w, y(p), BID if side == "buy" else ASK, 2)
        if len(self.closes) > 1:
            arcade.draw_line_strip([(x(t), y(p)) for t, p in self.closes], LINE, 2)
        elif self.closes:
            arcade.draw_circle_filled(w - 8, y(self.closes[0][1]), 3, LINE)
        for t, p, side in self.marks:
            arcade.draw_circle_filled(x(t), y(p), 4, BID if side == "buy" else ASK)
