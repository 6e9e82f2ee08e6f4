"""Wallet requests from players: balances, transfers (with X- tags), token info. The ledgers are the token
actors; this is the thin layer that checks a request, fills in who is asking, and asks the right ledger."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from server.economy.ledger import TOKENS
from server.core.protocol import Code, ProtocolError, response

if TYPE_CHECKING:
    from server.net.session import Connection

MAX_TAGS = 8
TAG_NAME = re.compile(r"^X-[A-Za-z0-9-]{1,40}$")


def _token(msg: dict[str, Any]) -> str:
    token = msg.get("Token") or "wAR"
    if token not in TOKENS:
        raise ProtocolError(Code.BAD_REQUEST, f"Token must be one of {', '.join(TOKENS)}", msg.get("Id"))
    return token


def _tags(msg: dict[str, Any]) -> dict[str, str]:
    tags = msg.get("Tags") or {}
    ref = msg.get("Id")
    if len(tags) > MAX_TAGS:
        raise ProtocolError(Code.BAD_REQUEST, f"at most {MAX_TAGS} tags", ref)
    for name, value in tags.items():
        if not isinstance(name, str) or not TAG_NAME.match(name):
            raise ProtocolError(Code.BAD_REQUEST, f"tag names look like X-Something, got {name!r}", ref)
        if not isinstance(value, str) or len(value) > 256:
            raise ProtocolError(Code.BAD_REQUEST, f"tag {name} must be a string of at most 256 characters", ref)
    return tags


async def handle(conn: "Connection", msg: dict[str, Any], now: int) -> None:
    bus, action, ref = conn.server.bus, msg["Action"], msg.get("Id")
    if action in ("TokenInfo", "Balances"):  # public, as on the original ledgers
        info = await bus.call(f"token:{_token(msg)}", {"Action": "Info" if action == "TokenInfo" else "Balances",
                                                        "T": now})
        conn.send(response(msg, **{k: v for k, v in info.items() if k != "Action"}))
        return
    if conn.player is None:
        raise ProtocolError(Code.NOT_LOGGED_IN, f"log in before {action}", ref)
    me = conn.player.name
    if action == "Balance":
        tokens = [_token(msg)] if msg.get("Token") else list(TOKENS)
        got = {t: (await bus.call(f"token:{t}", {"Action": "Balance", "Account": me, "T": now}))["Balance"]
               for t in tokens}
        conn.send(response(msg, Balances=got))
        return
    # Transfer
    token, tags = _token(msg), _tags(msg)
    recipient = msg["Recipient"]
    known = await bus.call("accounts", {"Action": "Lookup", "Player": recipient})
    if known["Account"] is None and recipient not in conn.server.service_accounts:
        raise ProtocolError(Code.UNKNOWN_ACCOUNT, f"no account {recipient!r}: nothing was sent", ref)
    if known["Account"] is not None:
        recipient = known["Account"]["Name"]
    done = await bus.call(f"token:{token}", {"Action": "Transfer", "From": me, "To": recipient,
                                             "Amount": msg["Quantity"], "Tags": tags, "T": now})
    if done["Action"] == "Error":
        raise ProtocolError(done["Code"], done["Message"], ref)
    conn.send(response(msg, Token=token, Recipient=recipient, Quantity=msg["Quantity"], Balance=done["Balance"]))
