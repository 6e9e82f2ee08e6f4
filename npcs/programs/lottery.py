"""The lottery llama: an NPC program (client/npc_sdk.py) selling tickets into a pot, drawn by commit-reveal.

Each round starts with a secret seed whose sha256 — the commitment — is public from the first ticket on (the
`pot` action tells it). Tickets are sold at a fixed price; when a round has `--tickets` of them (or, with
`--draw-after`, that many seconds have passed with two or more), the seed is revealed and the winner is

    sha256(seed + "\\n" + "\\n".join(tickets)) as a number, modulo the number of tickets

where each ticket is "<number>:<player>:<request id>", in the order sold. Anyone can check a draw (the
`last_draw` action gives the seed and the tickets; `check_draw` below is the whole check): the seed matches the
commitment published before any ticket was sold, so the llama could not pick it after seeing them. The pot — every
ticket's price, which the server settled into the llama's account — is paid to the winner from that account.

The llama keeps its rounds in a JSON file (`--state`), so a restart of the program loses no ticket and pays no
prize twice (each payment carries the round as its key).

    python -m npcs.programs.lottery --url ws://127.0.0.1:8765/ --name Lotto --key npc-… --state lotto.json
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

from client.npc_sdk import Npc, NpcError, Request, Text, action, fixed
from server.core.units import show

TICKET_PRICE = "1"  # wAR


def commitment_of(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def winner_index(seed: str, tickets: list[str]) -> int:
    digest = hashlib.sha256((seed + "\n" + "\n".join(tickets)).encode()).hexdigest()
    return int(digest, 16) % len(tickets)


def check_draw(commitment: str, seed: str, tickets: list[str], winner: str) -> bool:
    """Anyone's check of a draw: the seed is the one committed to, and it picks this winner from these tickets."""
    return commitment_of(seed) == commitment and bool(tickets) and \
        tickets[winner_index(seed, tickets)].split(":")[1] == winner


class Lottery(Npc):
    def __init__(self, state_path: Path, tickets_per_draw: int = 5, draw_after_s: float = 0.0):
        super().__init__()
        self.state_path, self.tickets_per_draw, self.draw_after_s = state_path, tickets_per_draw, draw_after_s
        self.state: dict[str, Any] = self.load()
        self.drawing = asyncio.Lock()

    # --- its state, in a file ------------------------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        if self.state_path.is_file():
            return json.loads(self.state_path.read_text())
        return {"round": 1, "seed": secrets.token_hex(32), "tickets": [], "pot": 0, "started": time.time(),
                "draws": []}

    def save(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        os.replace(tmp, self.state_path)  # whole or not at all

    @property
    def commitment(self) -> str:
        return commitment_of(self.state["seed"])

    # --- its actions ---------------------------------------------------------------------------------------------

    @action(title="Buy a ticket", description=f"One ticket into this round's pot, {TICKET_PRICE} wAR. The pot goes "
            "to one ticket, drawn by a seed committed to before the first sale.",
            price=fixed(TICKET_PRICE, "wAR"), fields={"wish": Text(max_length=40, title="A wish", default="")})
    async def ticket(self, request: Request, wish: str) -> dict[str, Any]:
        s = self.state
        return {"Text": f"a ticket for round {s['round']}" + (f", wishing {wish!r}" if wish else "") +
                        f". Commitment {self.commitment[:16]}…; the draw is at {self.tickets_per_draw} tickets.",
                "Data": {"Round": s["round"], "Commitment": self.commitment}}

    async def on_paid(self, request: Request, paid: int) -> None:
        """A ticket is in the round once its price is in the llama's account (the server settled it)."""
        if request.action != "ticket" or not paid:
            return
        s = self.state
        s["tickets"].append(f"{len(s['tickets']) + 1}:{request.player}:{request.id}")
        s["pot"] += paid
        self.save()
        await self.tell(request.player, f"ticket #{len(s['tickets'])} of round {s['round']} is yours; the pot is "
                                        f"{show(s['pot'])} wAR")
        if len(s["tickets"]) >= self.tickets_per_draw:
            await self.draw()

    @action(title="The pot", description="This round's pot, tickets sold and commitment (free).")
    async def pot(self, request: Request) -> dict[str, Any]:
        s = self.state
        return {"Text": f"round {s['round']}: {len(s['tickets'])} tickets, pot {show(s['pot'])} wAR, commitment "
                        f"{self.commitment}",
                "Data": {"Round": s["round"], "Tickets": len(s["tickets"]), "Pot": s["pot"],
                         "Commitment": self.commitment}}

    @action(title="The last draw", description="The last round's seed, tickets and winner, to check (free).")
    async def last_draw(self, request: Request) -> dict[str, Any]:
        if not self.state["draws"]:
            raise NpcError("no round has been drawn yet")
        d = self.state["draws"][-1]
        return {"Text": f"round {d['round']}: seed {d['seed']}, {len(d['tickets'])} tickets, winner {d['winner']} "
                        f"({show(d['pot'])} wAR). Check: sha256(seed) = {d['commitment'][:16]}…",
                "Data": d}

    # --- the draw ------------------------------------------------------------------------------------------------

    async def draw(self) -> None:
        async with self.drawing:
            s = self.state
            if not s["tickets"]:
                return
            tickets = list(s["tickets"])
            winner = tickets[winner_index(s["seed"], tickets)].split(":")[1]
            draw = {"round": s["round"], "commitment": self.commitment, "seed": s["seed"], "tickets": tickets,
                    "winner": winner, "pot": s["pot"], "paid": False}
            s["draws"] = (s["draws"] + [draw])[-20:]
            s.update(round=s["round"] + 1, seed=secrets.token_hex(32), tickets=[], pot=0, started=time.time())
            self.save()  # the round is closed before the prize moves: a restart pays it, never draws it again
            await self.pay_prizes()

    async def pay_prizes(self) -> None:
        for d in self.state["draws"]:
            if d["paid"]:
                continue
            await self.pay(d["winner"], d["pot"], "wAR", key=f"round-{d['round']}", memo=f"lottery round {d['round']}")
            d["paid"] = True
            self.save()
            await self.announce(f"Round {d['round']} is drawn: {d['winner']} wins {show(d['pot'])} wAR! Seed "
                                f"{d['seed'][:16]}… (ask me for the last draw to check it)")

    async def on_ready(self) -> None:
        await self.pay_prizes()  # one a lost connection interrupted
        await self.announce(f"Round {self.state['round']} is open: tickets {TICKET_PRICE} wAR. Commitment "
                            f"{self.commitment[:16]}…")
        if self.draw_after_s > 0:
            task = asyncio.get_running_loop().create_task(self.clock())
            self.tasks.add(task)

    async def clock(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if time.time() - self.state["started"] >= self.draw_after_s and len(self.state["tickets"]) >= 2:
                await self.draw()


def main() -> None:
    p = argparse.ArgumentParser(description="The lottery llama, an NPC program for a Llama Land world.")
    p.add_argument("--url", default="ws://127.0.0.1:8765/")
    p.add_argument("--name", required=True, help="the NPC name its key was issued for")
    p.add_argument("--key", default=os.environ.get("LLAMA_LAND_NPC_KEY"), help="its NPC key (or LLAMA_LAND_NPC_KEY)")
    p.add_argument("--state", type=Path, default=Path("lottery.json"), help="where it keeps its rounds")
    p.add_argument("--tickets", type=int, default=5, help="tickets that make a draw (default 5)")
    p.add_argument("--draw-after", type=float, default=0.0, help="or draw after this many seconds (2+ tickets)")
    args = p.parse_args()
    if not args.key:
        p.error("give --key (or LLAMA_LAND_NPC_KEY): `llama-land admin npc add NAME --room … --at X,Y` prints one")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    Lottery(args.state, max(1, args.tickets), args.draw_after).run(args.url, args.name, args.key)


if __name__ == "__main__":
    main()
