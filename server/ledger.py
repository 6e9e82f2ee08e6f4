"""Token ledgers: integer balances and escrow, one logged actor per token (`token:wAR`, later `token:LLAMA`).

Amounts are integers in base units (12 decimals: 1 wAR = 10**12). Every change is validated by `refusal()` (pure)
before it is logged, and applied by `TokenState` (a reducer), so a replay rebuilds the same balances and the
invariant balances + escrow = supply holds after every entry. Escrow is how paid services work: a Hold takes
the fee from the payer, and exactly one of Settle (to the service) or Refund (to the payer) closes it.
"""

from __future__ import annotations

from typing import Any

from .actors import Actor, Bus, Message, action
from .log import MessageLog
from .state import ActorState

DECIMALS = 12
UNIT = 10**DECIMALS


class TokenState(ActorState):
    kind = "token"

    def __init__(self) -> None:
        self.balances: dict[str, int] = {}
        self.escrow: dict[str, dict[str, Any]] = {}  # id -> {"Payer", "Amount", "For"}
        self.supply = 0

    def balance(self, account: str) -> int:
        return self.balances.get(account, 0)

    def _add(self, account: str, amount: int) -> None:
        self.balances[account] = self.balances.get(account, 0) + amount

    def on_Mint(self, msg: Message) -> None:
        self._add(msg["To"], msg["Amount"])
        self.supply += msg["Amount"]

    def on_Transfer(self, msg: Message) -> None:
        self._add(msg["From"], -msg["Amount"])
        self._add(msg["To"], msg["Amount"])

    def on_Hold(self, msg: Message) -> None:
        self._add(msg["From"], -msg["Amount"])
        self.escrow[msg["Escrow"]] = {"Payer": msg["From"], "Amount": msg["Amount"], "For": msg["For"]}

    def on_Settle(self, msg: Message) -> None:
        held = self.escrow.pop(msg["Escrow"])
        self._add(msg["To"], held["Amount"])

    def on_Refund(self, msg: Message) -> None:
        held = self.escrow.pop(msg["Escrow"])
        self._add(held["Payer"], held["Amount"])

    def consistent(self) -> bool:
        return sum(self.balances.values()) + sum(e["Amount"] for e in self.escrow.values()) == self.supply


def refusal(state: TokenState, msg: Message) -> tuple[str, str] | None:
    """Why msg may not be applied, as (code, message); None if it may."""
    kind = msg["Action"]
    amount = msg.get("Amount")
    if kind in ("Mint", "Transfer", "Hold"):
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return "BAD_AMOUNT", f"an amount is a positive whole number of base units, got {amount!r}"
    if kind in ("Transfer", "Hold") and state.balance(msg["From"]) < amount:
        return "INSUFFICIENT_FUNDS", (f"{msg['From']} has {state.balance(msg['From'])} base units, "
                                      f"needs {amount}")
    if kind == "Hold" and msg["Escrow"] in state.escrow:
        return "DUPLICATE_ESCROW", f"escrow {msg['Escrow']} is already open"
    if kind in ("Settle", "Refund") and msg["Escrow"] not in state.escrow:
        return "UNKNOWN_ESCROW", f"escrow {msg['Escrow']} is not open (already settled or refunded?)"
    return None


LOGGED = {"Mint": ("To", "Amount", "Memo"), "Transfer": ("From", "To", "Amount", "Memo"),
          "Hold": ("Escrow", "From", "Amount", "For"), "Settle": ("Escrow", "To"), "Refund": ("Escrow", "Reason")}


class TokenActor(Actor):
    """One token's ledger. Requests carry ReplyTo; the answer is the new state of what changed, or an Error."""

    def __init__(self, ticker: str, bus: Bus, log: MessageLog):
        super().__init__(f"token:{ticker}")
        self.ticker = ticker
        self.bus, self.log = bus, log
        self.state: TokenState = log.load(self.id)  # type: ignore[assignment]
        for kind in LOGGED:
            self.handle(kind.lower(), action(kind), self.on_change)
        self.handle("balance", action("Balance"), self.on_balance)
        self.handle("escrows", action("Escrows"), self.on_escrows)

    async def on_change(self, msg: Message) -> None:
        no = refusal(self.state, msg)
        if no is not None:
            self.bus.send(msg["ReplyTo"], {"Action": "Error", "Code": no[0], "Message": no[1]})
            return
        entry = {"Action": msg["Action"], **{k: msg.get(k) for k in LOGGED[msg["Action"]]}, "T": msg["T"]}
        await self.log.append(self.id, entry)
        self.state.apply(entry)
        if self.log.snapshot_due(self.id):
            self.log.snapshot(self.id, self.state)
        account = msg.get("From") or msg.get("To")
        self.bus.send(msg["ReplyTo"], {"Action": f"{msg['Action']}-Done", "Token": self.ticker,
                                       "Balance": self.state.balance(account) if account else None})

    def on_balance(self, msg: Message) -> None:
        self.bus.send(msg["ReplyTo"], {"Action": "Balance-Done", "Token": self.ticker,
                                       "Account": msg["Account"], "Balance": self.state.balance(msg["Account"])})

    def on_escrows(self, msg: Message) -> None:
        prefix = msg.get("Prefix", "")
        self.bus.send(msg["ReplyTo"], {"Action": "Escrows-Done", "Token": self.ticker,
                                       "Escrows": {k: v for k, v in self.state.escrow.items() if k.startswith(prefix)}})
