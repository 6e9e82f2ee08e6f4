"""NPC panels: what opens when you press E next to an NPC. One class per kind, each a small form on the right.

King: the petition form (the offering, from a quote), the verdict (grade, each committee vote, uniqueness, mood,
payout, clamps) and your petition history. Joker: a topic and the herd's fee. Oracle: a question for a prophecy,
and the High/Low bet, whose result is checked here against the commitment it was made under (npcs/actors/fairness.py).
Trader: the market — the price chart (client/chart.py), the book, your orders, buy, sell and cancel (prices typed
in wAR per LLAMA, quantities in LLAMA), and what the trader holds and last decided.
"""

from __future__ import annotations

import secrets
from typing import Any, Protocol

import arcade
from arcade.gui import UIFlatButton

from npcs.actors import fairness
from server.core.units import parse_amount, show

from client.chart import PriceChart
from client.widgets import SubmitInput, label, panel, row


class PanelHost(Protocol):
    """What a panel needs of the window that opens it (client/play.py's PlayView)."""

    ui: Any  # the arcade.gui UIManager the panel adds itself to
    net: Any  # the network thread requests go through

    def close_panel(self) -> None: ...


def llama(value: int) -> str:
    return show(value)


def limit(npc: dict[str, Any], action: str, field: str, default: tuple[int, int]) -> tuple[int, int]:
    """A request field's [lowest, highest] as this world sets it (RoomJoined.Npcs[].Limits), or the default of an
    older server that does not send them."""
    lo, hi = (npc.get("Limits") or {}).get(action, {}).get(field, default)
    return lo, hi


class NpcPanel:
    title = ""
    info_height, out_height = 58, 190  # a tall panel (the market's) gives its form more room

    def __init__(self, play: PanelHost, npc: dict[str, Any]):
        self.play, self.npc, self.net = play, npc, play.net
        self.info = label(" ", 11, width=380, height=self.info_height, color=arcade.color.LIGHT_GRAY)
        self.out = label(" ", 11, width=380, height=self.out_height)
        self.inputs: list[SubmitInput] = []
        close = UIFlatButton(text="Close (Esc)", width=180)
        close.on_click = lambda _: self.play.close_panel()
        self.anchor, self.box = panel([label(f"{npc['Name']}", 18, bold=True, color=arcade.color.YELLOW), self.info,
                                       *self.build(), self.out, close], anchor_x="right", align_x=-16)
        play.ui.add(self.anchor)

    def build(self) -> list:
        return []

    def field(self, on_submit, width: int = 380, lines: int = 1) -> SubmitInput:
        """A text field; with lines > 1 it wraps, so all of a long text stays in view (Enter still submits)."""
        box = SubmitInput(on_submit, clear=False, width=width, height=30 if lines == 1 else 18 * lines + 10,
                          font_size=12, multiline=lines > 1)
        self.inputs.append(box)
        return box

    def button(self, text: str, fn, width: int = 180) -> UIFlatButton:
        b = UIFlatButton(text=text, width=width)
        b.on_click = lambda _: fn()
        return b

    def typing(self) -> bool:
        return any(i.active for i in self.inputs)

    def show(self, text: str) -> None:
        self.out.text = text

    def close(self) -> None:
        self.play.ui.remove(self.anchor)

    def on_event(self, ev: dict[str, Any]) -> None:
        pass

    def on_reply(self, tag: str, reply: dict[str, Any]) -> None:
        if reply.get("Action") == "Error":
            self.show(f"{reply.get('Code')}: {reply.get('Message')}")


class KingPanel(NpcPanel):
    def build(self) -> list:
        self.text = self.field(lambda _: self.petition(), lines=5)
        self.net.request("Quote", tag="quote", Service="petition", Text="-")
        self.net.request("FedInfo", tag="fed")
        lo, hi = limit(self.npc, "Petition", "Text", (2, 250))
        return [label(f"Your petition ({lo}-{hi} characters):", 12), self.text,
                self.button("Petition the King", self.petition), self.button("My petitions", self.history)]

    def petition(self) -> None:
        self.show("Sending…")
        self.net.request("Petition", tag="petition", Text=self.text.text, Key=secrets.token_hex(8))

    def history(self) -> None:
        self.net.request("Petitions", tag="history")

    def on_reply(self, tag: str, reply: dict[str, Any]) -> None:
        if reply.get("Action") == "Error":
            return super().on_reply(tag, reply)
        if tag == "quote":
            self.info.text = f"Offering: {llama(reply['Fee'])} wAR, kept by the Fed once your petition is judged."
        elif tag == "fed":
            members = ", ".join(m["Name"] for m in reply["Committee"]) or "the King alone"
            self.info.text += f" Committee: {members}."
        elif tag == "petition":
            self.show("Already judged — see My petitions." if reply["Duplicate"] else
                      f"The committee ({', '.join(reply['Committee'])}) is judging…")
        elif tag == "history":
            lines = [f"{p['Status']:>8}  grade {p.get('Grade', '-')}  {llama(p.get('Payout', 0))} LLAMA  "
                     f"“{p['Text'][:28]}”" for p in reply["Petitions"][:8]]
            self.show("\n".join(lines) or "No petitions yet.")

    def on_event(self, ev: dict[str, Any]) -> None:
        if ev["Action"] == "NpcThinking":
            self.show(f"The committee is thinking… {'(' + str(ev['Position']) + ' in line)' if ev['Position'] else ''}")
        elif ev["Action"] == "Granted":
            votes = ", ".join(f"{v['Name']} {v['Grade']}" for v in ev["Votes"])
            clamps = f"\nLowered by: {', '.join(ev['Clamps'])}" if ev["Clamps"] else ""
            judged = (f"\nCommittee {ev['Committee']:.1f}, examples {ev['Examples']:.1f}"
                      if ev.get("Examples") is not None and ev.get("Committee") is not None else "")
            self.show(f"Grade {ev['Grade']} (votes: {votes}){judged}\nUniqueness {ev['Uniqueness']} × mood "
                      f"{ev['Mood']}\nPayout: {llama(ev['Payout'])} LLAMA{clamps}")
        elif ev["Action"] == "PetitionFailed":
            self.show(f"The Fed could not decide ({ev['Code']}). Your {llama(ev['Refunded'])} wAR came back.")


class JokerPanel(NpcPanel):
    def build(self) -> list:
        self.topic = self.field(lambda _: self.joke())
        self.net.request("Quote", tag="quote", Service="joke", Text="hay")
        lo, hi = limit(self.npc, "Joke", "Topic", (1, 20))
        return [label(f"A joke about ({lo}-{hi} characters):", 12), self.topic,
                self.button("Tell me a joke", self.joke)]

    def joke(self) -> None:
        self.show("The Joker thinks…")
        self.net.request("Joke", tag="joke", Topic=self.topic.text)

    def on_reply(self, tag: str, reply: dict[str, Any]) -> None:
        if reply.get("Action") == "Error":
            return super().on_reply(tag, reply)
        if tag == "quote":
            self.info.text = f"Fee: about {llama(reply['Fee'])} wAR (the herd's price; held until the joke is told)."
        elif tag == "joke":
            self.show(f"Paid {llama(reply['Fee'])} wAR into escrow; waiting…")

    def on_event(self, ev: dict[str, Any]) -> None:
        if ev["Action"] == "NpcThinking":
            self.show(f"thinking… {'(' + str(ev['Position']) + ' in line)' if ev['Position'] else ''}")
        elif ev["Action"] == "NpcDone":
            self.show(ev["Text"])
        elif ev["Action"] == "NpcFailed":
            self.show(f"No joke this time ({ev['Code']}); {llama(ev['Refunded'])} wAR refunded.")


class OraclePanel(JokerPanel):
    def build(self) -> list:
        self.question = self.field(lambda _: self.prophecy())
        self.bet = self.field(lambda _: None, width=120)
        self.bet.text = "1"
        self.last_commitment = ""
        self.net.request("OracleInfo", tag="info")
        lo, hi = limit(self.npc, "Prophecy", "Question", (2, 200))
        return [label(f"Ask the Oracle ({lo}-{hi} characters):", 12), self.question,
                self.button("Prophecy", self.prophecy),
                label("High/Low — bet (LLAMA):", 12), self.bet,
                self.button("High (50-99)", lambda: self.play_game("high")),
                self.button("Low (0-49)", lambda: self.play_game("low"))]

    def prophecy(self) -> None:
        self.show("The Oracle gazes into the hay…")
        self.net.request("Prophecy", tag="joke", Question=self.question.text)

    def play_game(self, guess: str) -> None:
        try:
            bet = parse_amount(self.bet.text)
        except ValueError:
            self.show("A bet is a number of LLAMA, like 1 or 2.5")
            return
        self.net.request("HighLow", tag="game", Bet=bet, Guess=guess, ClientSeed=secrets.token_hex(8),
                         Commitment=self.last_commitment)

    def on_reply(self, tag: str, reply: dict[str, Any]) -> None:
        if tag == "info" and reply.get("Action") != "Error":
            self.last_commitment = reply["Commitment"]
            self.info.text = (f"Pool {llama(reply['Pool'])} LLAMA; bets {llama(reply['MinBet'])}-"
                              f"{llama(reply['MaxBet'])}; a win pays {reply['WinRatio'][0]}/{reply['WinRatio'][1]}×. "
                              f"Next game's commitment {reply['Commitment'][:12]}…")
        elif tag == "game" and reply.get("Action") != "Error":
            fair = fairness.check_roll(reply["ServerSeed"], self.last_commitment, reply["ClientSeed"], reply["Nonce"],
                                       reply["Roll"])
            self.show(f"Roll {reply['Roll']}: {'you win ' + llama(reply['Payout']) + ' LLAMA' if reply['Won'] else 'you lose'}"
                      f".\nVerified: sha256(seed) = commitment and the roll recomputes: {'yes ✓' if fair else 'NO ✗'}")
            self.last_commitment = reply["NextCommitment"]
        elif tag == "game" and reply.get("Code") == "STALE_COMMITMENT":
            self.last_commitment = reply["Commitment"]
            self.show("The Oracle drew a new seed; press again to bet against it.")
        else:
            super().on_reply(tag, reply)


class WandererPanel(NpcPanel):
    def build(self) -> list:
        self.info.text = f"Say “{self.npc['Name']}” in chat (Enter) and {self.npc['Name']} will answer."
        return []


class TraderPanel(NpcPanel):
    info_height, out_height = 46, 46

    def build(self) -> list:
        self.chart = PriceChart(height=110)
        self.book = label(" ", 11, width=380, height=52, color=arcade.color.LIGHT_GRAY)
        self.price = self.field(lambda _: None, width=120)
        self.quantity = self.field(lambda _: None, width=120)
        self.mine: list[dict[str, Any]] = []
        self.refresh()
        return [self.chart, self.book, label("Price (wAR per LLAMA) and quantity (LLAMA):", 11),
                row(self.price, self.quantity), row(self.button("Buy", lambda: self.place("buy"), width=120),
                                                    self.button("Sell", lambda: self.place("sell"), width=120)),
                self.button("Cancel my newest order", self.cancel, width=248)]

    def refresh(self) -> None:
        for action, tag, fields in (("TraderInfo", "trader", {}), ("OrderBook", "book", {"Depth": 4}),
                                    ("MyOrders", "mine", {}), ("Candles", "candles", {"Interval": "1m"}),
                                    ("Trades", "trades", {"Limit": 100})):
            self.net.request(action, tag=tag, **fields)

    def place(self, side: str) -> None:
        try:
            price, quantity = parse_amount(self.price.text), parse_amount(self.quantity.text)
        except ValueError:
            self.show("A price and a quantity are numbers, like 0.12 and 5")
            return
        self.show(f"Placing a {side} order…")
        self.net.request("PlaceOrder", tag="placed", Side=side, Price=price, Quantity=quantity)

    def cancel(self) -> None:
        if not self.mine:
            self.show("You have no open order.")
            return
        self.net.request("CancelOrder", tag="cancelled", OrderId=self.mine[-1]["OrderId"])

    def on_reply(self, tag: str, reply: dict[str, Any]) -> None:
        if reply.get("Action") == "Error":
            return super().on_reply(tag, reply)
        if tag == "trader":
            last = reply["Decisions"][-1]["Why"] if reply["Decisions"] else "no trade yet"
            self.info.text = (f"Holds {show(reply['Llama'])} LLAMA, {show(reply['War'])} wAR; position "
                              f"{show(reply['Position'])}; today {show(reply['PnLToday'])} wAR. Last: {last}")
        elif tag == "book":
            asks = "  ".join(f"{show(p)}×{show(q)}" for p, q in reversed(reply["Asks"])) or "-"
            bids = "  ".join(f"{show(p)}×{show(q)}" for p, q in reply["Bids"]) or "-"
            last = f"{show(reply['Last'])} wAR" if reply.get("Last") else "no trade yet"
            self.book.text = f"Asks: {asks}\nBids: {bids}\nLast: {last}"
        elif tag == "mine":
            self.mine = reply["Orders"]
            self.chart.update(orders=[(o["Side"], o["Price"]) for o in self.mine])
            if self.mine:
                self.show("Your orders: " + ", ".join(f"{o['Side']} {show(o['Quantity'])} @ {show(o['Price'])}"
                                                      for o in self.mine[-4:]))
        elif tag == "candles":
            self.chart.update(closes=[(c[0], c[4]) for c in reply["Candles"]])
        elif tag == "trades":
            me = self.npc["Id"]
            self.chart.update(marks=[(t["T"], t["Price"], "buy" if t["Buyer"] == me else "sell")
                                     for t in reply["Trades"] if me in (t["Buyer"], t["Seller"])])
        elif tag == "placed":
            self.show(f"Order {reply['OrderId'][-6:]}: {show(reply['Filled'])} LLAMA filled, "
                      f"{show(reply['Remaining'])} resting.")
            self.refresh()
        elif tag == "cancelled":
            self.show(f"Cancelled: {show(reply['Refunded'])} {reply['Token']} back.")
            self.refresh()

    def on_event(self, ev: dict[str, Any]) -> None:
        if ev["Action"] in ("OrderFilled", "OrderExpired") or (ev["Action"] == "ChatLine"
                                                               and ev.get("Npc") == self.npc["Id"]):
            self.refresh()


PANELS = {"king": KingPanel, "joker": JokerPanel, "oracle": OraclePanel, "wanderer": WandererPanel,
          "trader": TraderPanel}
