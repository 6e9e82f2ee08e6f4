"""Wallet requests from players: balances, transfers (with X- tags), token info. The ledgers are the token
actors; this is the thin layer that checks a request, fills in who is asking, and asks the right ledger."""

from __future__ import annotations

import re
from typing import Any

from server.core.protocol import Code, ProtocolError, response
from server.core.request import RequestContext
from server.core.units import TOKENS
from server.economy.ledger import change

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


async def handle(ctx: RequestContext, msg: dict[str, Any]) -> dict[str, Any]:
    """Answer one wallet request (the session has checked who may ask): the response map, or ProtocolError."""
    bus, action, ref, now = ctx.bus, msg["Action"], msg.get("Id"), ctx.t
    if action in ("TokenInfo", "Balances"):  # public, as on the original ledgers
        info = await bus.call(f"token:{_token(msg)}", {"Action": "Info" if action == "TokenInfo" else "Balances",
                                                        "T": now})
        return response(msg, **{k: v for k, v in info.items() if k != "Action"})
    me = ctx.player
    if me is None:
        raise ProtocolError(Code.NOT_LOGGED_IN, f"log in before {action}", ref)
    if action == "Balance":
        tokens = [_token(msg)] if msg.get("Token") else list(TOKENS)
        got = {t: (await bus.call(f"token:{t}", {"Action": "Balance", "Account": me, "T": now}))["Balance"]
               for t in tokens}
        return response(msg, Balances=got)
    # Transfer
    token, tags = _token(msg), _tags(msg)
    recipient = msg["Recipient"]
    known = await bus.call("accounts", {"Action": "Lookup", "Player": recipient})
    if known["Account"] is None and recipient not in ctx.service_accounts:
        raise ProtocolError(Code.UNKNOWN_ACCOUNT, f"no account {recipient!r}: nothing was sent", ref)
    if known["Account"] is not None:
        recipient = known["Account"]["Name"]
    # The player's own Key makes a resend safe (an answer lost with the connection): per player, so no two collide.
    key = {"Ref": f"player:{me}:{msg['Key']}"} if msg.get("Key") else {}
    done = await change(bus, token, {"Action": "Transfer", "From": me, "To": recipient,
                                     "Amount": msg["Quantity"], "Tags": tags, "T": now, **key})
    if done["Action"] == "Error":
        raise ProtocolError(done["Code"], done["Message"], ref)
    repeat = {"Repeat": True} if done.get("Repeat") else {}
    return response(msg, Token=token, Recipient=recipient, Quantity=msg["Quantity"], Balance=done["Balance"], **repeat)
