"""The price-feed llama: an NPC program (client/npc_sdk.py) that tells anyone the market's price, for free.

Ask it (its `price` action) and it answers with the last traded price of LLAMA in wAR and the change over 24
hours, read from the market's public MarketInfo at that moment; the answer's Data has the same figures as
numbers (base units of wAR per LLAMA) for programs.

    python -m npcs.programs.price_feed --url ws://127.0.0.1:8765/ --name Ticker --key npc-…
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from client.npc_sdk import Npc, Request, action
from server.core.units import show


def describe(info: dict[str, Any]) -> str:
    last, change = info.get("Last"), info.get("Change24h") or 0
    if not last:
        return "LLAMA has not traded yet: no price to tell"
    before = last - change
    pct = f" ({change / before * 100:+.1f}%)" if before > 0 else ""
    return (f"LLAMA last traded at {show(last)} wAR; {'+' if change >= 0 else '-'}{show(abs(change))} wAR in 24 h{pct}"
            f", {show(info.get('Volume24h') or 0)} LLAMA traded")


class PriceFeed(Npc):
    @action(title="Market price", description="The last LLAMA price in wAR and its change over 24 hours (free).")
    async def price(self, request: Request) -> dict[str, Any]:
        info = await self.market()
        data = {k: info.get(k) for k in ("Last", "Change24h", "Open24h", "Volume24h")}
        return {"Text": describe(info), "Data": data}


def main() -> None:
    p = argparse.ArgumentParser(description="The price-feed llama, an NPC program for a Llama Land world.")
    p.add_argument("--url", default="ws://127.0.0.1:8765/")
    p.add_argument("--name", required=True, help="the NPC name its key was issued for")
    p.add_argument("--key", default=os.environ.get("LLAMA_LAND_NPC_KEY"), help="its NPC key (or LLAMA_LAND_NPC_KEY)")
    args = p.parse_args()
    if not args.key:
        p.error("give --key (or LLAMA_LAND_NPC_KEY): `llama-land admin npc add NAME --room … --at X,Y` prints one")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    PriceFeed().run(args.url, args.name, args.key)


if __name__ == "__main__":
    main()
