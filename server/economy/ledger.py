"""Token ledgers: integer balances and escrow, one logged actor per token (`token:wAR`, later `token:LLAMA`).

Amounts are integers in base units (12 decimals: 1 wAR = 10**12). Every change is validated by `refusal()` (pure)
before it is logged, and applied by `TokenState` (a reducer), so a replay rebuilds the same balances and the
invariant balances + escrow = supply holds after every entry. Escrow is how paid services work: a Hold takes
the fee from the payer, and exactly one of Settle (to the service) or Refund (to the payer) closes it.

Every change is idempotent by its key (`key_of`): a Hold, Settle or Refund by its escrow id, a Mint or Transfer by
its Ref. A request over a network can time out with its outcome unknown; asked again with the same key and the same
terms, the ledger answers what it answered the first time and moves nothing; with other terms, it refuses.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from server.core.actors import Bus, Message, action, player_id
from server.core.logged import LoggedActor
from server.core.log import MessageLog
from server.core.state import ActorState, digest
from server.core.units import DECIMALS, UNIT
from server.core.protocol import Code

LLAMA_CAP = 11_111_111 * UNIT  # the reference system's total supply cap
SERVICE_ACCOUNTS = frozenset({"herd", "fed", "market"})  # accounts that belong to the world, not to a player (NPCs add theirs)


class TokenState(ActorState):
    kind = "token"

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}  # {"Cap": int | None, "Minters": [...]}, from the logged Configure
        self.balances: dict[str, int] = {}
        self.escrow: dict[str, dict[str, Any]] = {}  # id -> {"Payer", "Amount", "For"}
        self.supply = 0
        self.allowances: dict[str, int] = {}  # accounts that received their starting allowance
        self.refs: dict[str, int] = {}  # Ref -> amount: a mint or transfer with a Ref happens at most once
        self.done: dict[str, list[Any]] = {}  # key -> [kind, terms, the answer's Balance], from entries with a Key

    def balance(self, account: str) -> int:
        return self.balances.get(account, 0)

    def _add(self, account: str, amount: int) -> None:
        self.balances[account] = self.balances.get(account, 0) + amount

    def on_Configure(self, msg: Message) -> None:
        self.config = {"Cap": msg["Cap"], "Minters": list(msg["Minters"])}

    def on_Allowance(self, msg: Message) -> None:
        self.allowances[msg["To"]] = msg["Amount"]
        self._add(msg["To"], msg["Amount"])
        self.supply += msg["Amount"]

    def _ref(self, msg: Message) -> None:
        if msg.get("Ref"):
            self.refs[msg["Ref"]] = msg["Amount"]

    def on_Mint(self, msg: Message) -> None:
        self._ref(msg)
        self._add(msg["To"], msg["Amount"])
        self.supply += msg["Amount"]

    def on_Transfer(self, msg: Message) -> None:
        self._ref(msg)
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

    def apply(self, msg: Message) -> None:
        super().apply(msg)
        if msg.get("Key"):  # entries written before keys (older logs) have none and fill nothing
            self.done[msg["Key"]] = [msg["Action"], terms(msg), self.answer_balance(msg)]

    def answer_balance(self, msg: Message) -> int | None:
        """The Balance a change answers with: the payer's (or the receiver's, for a Mint or Settle)."""
        account = msg.get("From") or msg.get("To")
        return self.balance(account) if account else None

    def to_data(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        if not data["done"]:  # a log from before keys has the digest it always had
            del data["done"]
        return data

    def consistent(self) -> bool:
        return sum(self.balances.values()) + sum(e["Amount"] for e in self.escrow.values()) == self.supply


# What a retry must repeat exactly, per change (memos, reasons and tags describe; they move nothing).
TERMS = {"Mint": ("To", "Amount", "By"), "Transfer": ("From", "To", "Amount"), "Hold": ("From", "Amount", "For"),
         "Settle": ("To",), "Refund": ()}


def key_of(msg: Message) -> str | None:
    """The idempotency key of a change: one Hold and one close (Settle or Refund) per escrow, one change per Ref."""
    kind = msg["Action"]
    if kind in ("Mint", "Transfer"):
        return f"ref:{msg['Ref']}" if msg.get("Ref") else None
    if kind == "Hold":
        return f"hold:{msg['Escrow']}"
    if kind in ("Settle", "Refund"):
        return f"close:{msg['Escrow']}"
    return None


def terms(msg: Message) -> str:
    return digest([msg["Action"], *(msg.get(k) for k in TERMS[msg["Action"]])])[:16]


def earlier(state: TokenState, msg: Message) -> list[Any] | None:
    """The recorded outcome of this very change (same key, same kind, same terms), if it was done already."""
    key = key_of(msg)
    done = state.done.get(key) if key else None
    return done if done is not None and done[:2] == [msg["Action"], terms(msg)] else None


def conflict(state: TokenState, msg: Message) -> tuple[str, str] | None:
    """A key already used by another change: the request is a mistake, not a retry."""
    key = key_of(msg)
    if key is None or key not in state.done:
        return None
    kind, what = state.done[key][0], msg["Action"]
    if what in ("Mint", "Transfer"):
        return Code.DUPLICATE_REF, f"Ref {msg['Ref']} was already used by a {kind.lower()} with other terms"
    if what == "Hold":
        return Code.DUPLICATE_ESCROW, f"escrow {msg['Escrow']} was already held with other terms"
    return Code.UNKNOWN_ESCROW, f"escrow {msg['Escrow']} is closed: it was {'settled' if kind == 'Settle' else 'refunded'}"


def refusal(state: TokenState, msg: Message) -> tuple[str, str] | None:
    """Why msg may not be applied, as (code, message); None if it may. (A repeat is answered before this.)"""
    kind = msg["Action"]
    amount = msg.get("Amount")
    if kind in TERMS and (no := conflict(state, msg)) is not None:
        return no
    if kind in ("Mint", "Transfer", "Hold", "Allowance"):
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return Code.BAD_AMOUNT, f"an amount is a positive whole number of base units, got {amount!r}"
    if kind in ("Mint", "Allowance"):
        minter = "allowance" if kind == "Allowance" else msg.get("By")
        if minter not in state.config.get("Minters", ()):
            return Code.NOT_A_MINTER, f"{minter!r} may not mint this token"
        cap = state.config.get("Cap")
        if cap is not None and state.supply + amount > cap:
            return Code.CAP_EXCEEDED, f"minting {amount} would pass the supply cap of {cap} (supply {state.supply})"
    if kind in ("Mint", "Transfer") and msg.get("Ref") and msg["Ref"] in state.refs:
        # Services retry after a crash with the same Ref: the second attempt must not pay again.
        return Code.DUPLICATE_REF, f"{kind.lower()} {msg['Ref']} has already been done"
    if kind == "Allowance" and msg["To"] in state.allowances:
        return Code.ALREADY_GRANTED, f"{msg['To']} has had the starting allowance"
    if kind in ("Transfer", "Hold") and state.balance(msg["From"]) < amount:
        return Code.INSUFFICIENT_FUNDS, (f"{msg['From']} has {state.balance(msg['From'])} base units, "
                                      f"needs {amount}")
    if kind == "Hold" and msg["Escrow"] in state.escrow:
        return Code.DUPLICATE_ESCROW, f"escrow {msg['Escrow']} is already open"
    if kind in ("Settle", "Refund") and msg["Escrow"] not in state.escrow:
        return Code.UNKNOWN_ESCROW, f"escrow {msg['Escrow']} is not open (already settled or refunded?)"
    return None


LOGGED = {"Mint": ("To", "Amount", "By", "Memo", "Ref"), "Allowance": ("To", "Amount"),
          "Transfer": ("From", "To", "Amount", "Tags", "Ref"),
          "Hold": ("Escrow", "From", "Amount", "For"), "Settle": ("Escrow", "To"), "Refund": ("Escrow", "Reason")}


# Who is told about each change, and how: (account field, notice, counterparty field, reason).
NOTICES = {
    "Mint": [("To", "Credit-Notice", None, "mint")],
    "Allowance": [("To", "Credit-Notice", None, "allowance")],
    "Transfer": [("From", "Debit-Notice", "To", "transfer"), ("To", "Credit-Notice", "From", "transfer")],
    "Hold": [("From", "Debit-Notice", None, "escrow")],
}


async def change(bus: Bus, token: str, msg: Message, attempts: int = 3, timeout: float = 10.0,
                 fresh: bool = False) -> Message:
    """Ask a ledger for a change and wait for its answer. An ask that goes unanswered (a lost reply, a ledger on
    another process that is restarting) is asked again with the same key, so it happens once whatever happened to
    the first ask; Mint and Transfer get a Ref of their own if the caller gave none. LookupError or TimeoutError
    only once every attempt went unanswered: the change may or may not have happened, and asking again later with
    the same message finds out. `fresh`: the key must be new — a repeat answered to the first ask is someone
    else's change under the same key, refused (a caller resuming after a crash wants the repeat, and omits it)."""
    if msg["Action"] in ("Mint", "Transfer") and not msg.get("Ref"):
        msg = {**msg, "Ref": f"{msg['Action'].lower()}:{uuid.uuid4().hex}"}
    for attempt in range(1, attempts + 1):
        try:
            answer = await bus.call(f"token:{token}", msg, timeout=timeout)
            if fresh and attempt == 1 and answer.get("Repeat"):
                code = Code.DUPLICATE_ESCROW if msg["Action"] == "Hold" else Code.DUPLICATE_REF
                return {"Action": "Error", "Code": code, "Message": f"{key_of(msg)} was already used"}
            return answer
        except (TimeoutError, LookupError):
            if attempt == attempts:
                raise
            await asyncio.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


class TokenActor(LoggedActor):
    """One token's ledger. Requests carry ReplyTo; the answer is the new state of what changed, or an Error.
    Every balance change also sends the account a Debit-Notice or Credit-Notice (with a transfer's X- tags)."""

    State = TokenState
    state: TokenState

    def __init__(self, ticker: str, bus: Bus, log: MessageLog, cap: int | None = None,
                 minters: tuple[str, ...] = ()):
        super().__init__(f"token:{ticker}", log)
        self.ticker = ticker
        self.bus, self.log = bus, log
        self.wanted = {"Cap": cap, "Minters": list(minters)}
        for kind in LOGGED:
            self.handle(kind.lower(), action(kind), self.on_change)
        for name, fn in [("Balance", self.on_balance), ("Balances", self.on_balances),
                         ("Total-Supply", self.on_total_supply), ("Info", self.on_info),
                         ("Escrows", self.on_escrows), ("Escrow-Status", self.on_escrow_status)]:
            self.handle(name.lower(), action(name), fn)

    async def open(self, t: int) -> None:
        """Record the cap and the minters this ledger runs under (once, and whenever they change)."""
        if self.state.config != self.wanted:
            await self.record({"Action": "Configure", **self.wanted, "T": t})

    async def on_change(self, msg: Message) -> None:
        repeat = earlier(self.state, msg)
        if repeat is not None:  # a retry of a change already made: its first answer again, nothing moves
            self.reply(msg, f"{msg['Action']}-Done", Token=self.ticker, Balance=repeat[2], Repeat=True)
            return
        no = refusal(self.state, msg)
        if no is not None:
            self.refuse(msg, *no)
            return
        held = self.state.escrow.get(msg.get("Escrow", ""), {})
        entry = {"Action": msg["Action"], **{k: msg.get(k) for k in LOGGED[msg["Action"]]}, "T": msg["T"]}
        if key_of(msg):
            entry["Key"] = key_of(msg)
        await self.record(entry)
        self.reply(msg, f"{msg['Action']}-Done", Token=self.ticker, Balance=self.state.answer_balance(msg))
        for field, notice, other, reason in NOTICES.get(msg["Action"], []):
            self.notify(msg[field], notice, msg["Amount"], reason, entry, other and msg[other])
        if msg["Action"] == "Settle":
            self.notify(msg["To"], "Credit-Notice", held["Amount"], "settle", entry, held["Payer"])
        elif msg["Action"] == "Refund":
            self.notify(held["Payer"], "Credit-Notice", held["Amount"], "refund", entry, None)

    def notify(self, account: str, notice: str, quantity: int, reason: str, entry: Message, other: str | None) -> None:
        """Tell a player in the world (their connection, or the avatar waiting for it). World accounts (the herd,
        the Fed, an Oracle's pool) are not told: their ledger entries are the record, and a notice nobody handles
        would only fill the operator's log. Offline players: nothing to tell (the balance is there at login). A
        player connected to another process of the world is told through the bus between them."""
        to = player_id(account)
        if not self.bus.may_reach(to):
            return
        msg = {"Action": notice, "Token": self.ticker, "Quantity": quantity, "Balance": self.state.balance(account),
               "Reason": reason, "T": entry["T"]}
        if other:
            msg["Recipient" if notice == "Debit-Notice" else "Sender"] = other
        if entry.get("Tags"):
            msg["Tags"] = entry["Tags"]
        self.bus.send(to, msg)

    def on_balance(self, msg: Message) -> None:
        self.reply(msg, "Balance-Done", Token=self.ticker, Account=msg["Account"],
                   Balance=self.state.balance(msg["Account"]))

    def on_balances(self, msg: Message) -> None:
        self.reply(msg, "Balances-Done", Token=self.ticker,
                   Balances={k: v for k, v in sorted(self.state.balances.items()) if v})

    def on_total_supply(self, msg: Message) -> None:
        self.reply(msg, "Total-Supply-Done", Token=self.ticker, TotalSupply=self.state.supply,
                   Cap=self.state.config.get("Cap"))

    def on_info(self, msg: Message) -> None:
        s = self.state
        self.reply(msg, "Info-Done", Token=self.ticker, Denomination=DECIMALS, TotalSupply=s.supply,
                   Cap=s.config.get("Cap"), Holders=sum(1 for v in s.balances.values() if v),
                   InEscrow=sum(e["Amount"] for e in s.escrow.values()))

    def on_escrows(self, msg: Message) -> None:
        prefix = msg.get("Prefix", "")
        self.reply(msg, "Escrows-Done", Token=self.ticker,
                   Escrows={k: v for k, v in self.state.escrow.items() if k.startswith(prefix)})

    def on_escrow_status(self, msg: Message) -> None:
        """What became of named escrows: "held", "settled", "refunded", or None if this ledger never held it."""
        def status(escrow: str) -> str | None:
            if escrow in self.state.escrow:
                return "held"
            closed = self.state.done.get(f"close:{escrow}")
            if closed is not None:
                return "settled" if closed[0] == "Settle" else "refunded"
            return None
        self.reply(msg, "Escrow-Status-Done", Token=self.ticker, Status={e: status(e) for e in msg["Escrows"]})
