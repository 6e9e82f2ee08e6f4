"""The Oracle: an AI prophecy for a question (paid at the herd's quote), and a provably fair High/Low game.

High/Low, in the order it happens:
  OracleInfo -> the player's commitment: sha256 of a server seed drawn for their next game (logged, secret)
  HighLow {Bet, Guess, ClientSeed, Commitment}
             -> the bet (1-10 LLAMA) and the pool's cover of a win are both put in escrow: the pool can never
                promise more than it holds, and an operator's withdrawal cannot take what is promised
             -> roll = H(server seed : client seed : nonce) mod 100; the logged Game reveals the seed
             -> win: the cover goes to the player and the bet comes back (a win pays bet x 1.5);
                loss: the bet goes to the pool and the cover back to it
The reply carries the seed, so the player checks sha256(seed) == the commitment it bet against and recomputes
the roll (npcs/actors/fairness.py). The pool is the account named like the Oracle; only the operator can withdraw
(`llama-land admin withdraw`). A crash between escrow and payment is finished at the next start.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from server.core.units import show
from server.core.actors import Message, action
from server.core.log import MessageLog
from server.core.logged import LoggedActor
from server.core.state import ActorState
from server.economy.ledger import change

from npcs.actors import fairness
from npcs.actors.services import NpcActor, PaidText
from server.core.protocol import Code



class OracleState(ActorState):
    kind = "oracle"

    def __init__(self) -> None:
        self.seeds: dict[str, dict[str, Any]] = {}  # player -> {"Seed", "Commitment", "Nonce"} for the next game
        self.games: dict[str, dict[str, Any]] = {}
        self.nonces: dict[str, int] = {}

    def on_Commit(self, msg: Message) -> None:
        self.seeds[msg["Player"]] = {"Seed": msg["Seed"], "Commitment": msg["Commitment"], "Nonce": msg["Nonce"]}
        self.nonces[msg["Player"]] = msg["Nonce"]

    def on_Game(self, msg: Message) -> None:
        self.games[msg["Gid"]] = {k: v for k, v in msg.items() if k not in ("Action", "Gid")} | {"Paid": False}
        self.seeds.pop(msg["Player"], None)

    def on_Paid(self, msg: Message) -> None:
        self.games[msg["Gid"]]["Paid"] = True


class OracleActor(NpcActor, LoggedActor):
    State = OracleState
    state: OracleState
    prophecy = PaidText("Question", Code.BAD_QUESTION, "prophecy", "question", "last_question")

    def __init__(self, bus: Any, spec: Any, room: str, memory: Any, inference: bool, log_: MessageLog, **npc: Any):
        super().__init__(bus, spec, room, memory, inference, prefix="oracle", log=log_, **npc)
        self.configure(spec, room)
        for name, fn in [("Prophecy", lambda msg: self.prophecy.ask(self, msg)), ("HighLow", self.on_highlow),
                         ("OracleInfo", self.on_oracle_info)]:
            self.handle(name.lower(), action(name), fn)

    @classmethod
    def build(cls, presence: Any, ctx: Any) -> "OracleActor":
        return cls(ctx.bus, presence.spec, presence.room, ctx.memory, ctx.inference, ctx.log, chat_max=ctx.chat_max)

    def configure(self, spec: Any, room: str) -> None:
        super().configure(spec, room)
        self.pool = spec.id
        self.ratio = Fraction(spec.economy["win_ratio"]).limit_denominator(1000)

    async def ledger(self, kind: str, fresh: bool = False, **fields: Any) -> Message:
        return await change(self.bus, "LLAMA", {"Action": kind, **fields}, fresh=fresh)  # retried with its key

    def quote_values(self, text: str) -> dict[str, Any]:
        return {self.prophecy.variable: text}

    # --- High/Low -------------------------------------------------------------------------------------------------

    async def commitment_for(self, player: str, t: int) -> dict[str, Any]:
        if player not in self.state.seeds:
            seed = fairness.new_seed()
            await self.record({"Action": "Commit", "Player": player, "Seed": seed, "Nonce":
                               self.state.nonces.get(player, 0) + 1, "Commitment": fairness.commitment(seed), "T": t})
        return self.state.seeds[player]

    async def on_oracle_info(self, msg: Message) -> None:
        mine = await self.commitment_for(msg["Player"], msg["T"])
        pool = await self.ledger("Balance", Account=self.pool, T=msg["T"])
        e = self.spec.economy
        self.answer(msg, Npc=self.spec.id, Pool=pool["Balance"], MinBet=e["min_bet"], MaxBet=e["max_bet"],
                    WinRatio=[self.ratio.numerator, self.ratio.denominator], Commitment=mine["Commitment"],
                    Nonce=mine["Nonce"])

    async def on_highlow(self, msg: Message) -> None:
        player, t, bet, e = msg["Player"], msg["T"], msg["Bet"], self.spec.economy
        mine = await self.commitment_for(player, t)
        if not e["min_bet"] <= bet <= e["max_bet"]:
            self.refuse(msg, Code.BAD_BET, f"a bet is {show(e['min_bet'])}-{show(e['max_bet'])} LLAMA "
                                        f"({e['min_bet']}-{e['max_bet']} base units), got {bet}")
            return
        if not msg["ClientSeed"].strip():
            self.refuse(msg, Code.BAD_REQUEST, "ClientSeed must not be empty: it is your part of the randomness")
            return
        if msg["Commitment"] != mine["Commitment"]:
            self.refuse(msg, Code.STALE_COMMITMENT, "bet against your current commitment (OracleInfo)",
                        Commitment=mine["Commitment"])
            return
        cover = bet * self.ratio.numerator // self.ratio.denominator - bet
        gid = f"{player}:{mine['Nonce']}"
        held = await self.ledger("Hold", Escrow=self.escrow(gid, "bet"), From=player, Amount=bet, For="high-low", T=t,
                                 fresh=True)
        if held["Action"] == "Error":
            self.refuse(msg, held["Code"], held["Message"])
            return
        if cover > 0:
            covered = await self.ledger("Hold", Escrow=self.escrow(gid, "cover"), From=self.pool, Amount=cover,
                                        For="high-low cover", T=t, fresh=True)
            if covered["Action"] == "Error":
                await self.ledger("Refund", Escrow=self.escrow(gid, "bet"), Reason="pool too small", T=t)
                self.refuse(msg, Code.POOL_TOO_SMALL, f"the Oracle's pool cannot cover a win of {show(cover)} LLAMA "
                                                   f"right now; bet less")
                return
        rolled = fairness.roll(mine["Seed"], msg["ClientSeed"], mine["Nonce"])
        won = fairness.wins(msg["Guess"], rolled)
        game = {"Player": player, "Bet": bet, "Cover": cover, "Guess": msg["Guess"], "ClientSeed": msg["ClientSeed"],
                "Nonce": mine["Nonce"], "Seed": mine["Seed"], "Commitment": mine["Commitment"], "Roll": rolled,
                "Won": won, "Payout": bet + cover if won else 0}
        await self.record({"Action": "Game", "Gid": gid, **game, "T": t})
        await self.pay(gid, t)
        nxt = await self.commitment_for(player, t)
        self.answer(msg, GameId=gid, **{k: v for k, v in game.items() if k != "Player"}, ServerSeed=mine["Seed"],
                    NextCommitment=nxt["Commitment"])
        self.say(f"{player} called {msg['Guess']}; the stars say {rolled}. "
                 f"{'A win' if won else 'Not this time'}: {show(game['Payout'])} LLAMA.", t)

    def escrow(self, gid: str, part: str) -> str:
        return f"oracle:{self.spec.id}:{gid}:{part}"

    async def pay(self, gid: str, t: int) -> None:
        """Close a game's escrows by its logged outcome. Repeating it is harmless (a closed escrow stays closed)."""
        g = self.state.games[gid]
        winner, keeper = (g["Player"], g["Player"]) if g["Won"] else (self.pool, self.pool)
        await self.ledger("Settle", Escrow=self.escrow(gid, "cover"), To=winner, T=t)
        await self.ledger("Settle", Escrow=self.escrow(gid, "bet"), To=keeper, T=t)
        await self.record({"Action": "Paid", "Gid": gid, "T": t})

    async def open(self, t: int) -> None:
        """After a crash: finish every logged game, and give back bets that never became a game."""
        for gid, g in list(self.state.games.items()):
            if not g["Paid"]:
                await self.pay(gid, t)
        prefix = f"oracle:{self.spec.id}:"
        open_escrows = (await self.ledger("Escrows", Prefix=prefix, T=t))["Escrows"]
        for escrow in sorted(open_escrows):
            await self.ledger("Refund", Escrow=escrow, Reason="restart", T=t)
