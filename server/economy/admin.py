"""Operator requests over the game port: `llama-land admin credit NAME AMOUNT --token wAR` and
`llama-land admin withdraw ACCOUNT AMOUNT --to NAME --token LLAMA` (out of a world account such as the Oracle's pool).

Only from a loopback address, and only with the admin key that the server keeps in a file readable by the
operator alone (next to the SQLite database, or where --admin-key-file says). Credits are mints by "operator":
the wAR ledger allows them; the LLAMA ledger refuses them, because only the Fed mints LLAMA.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from server.core.protocol import Code, ProtocolError, Refused, response
from server.core.request import RequestContext
from server.core.units import TOKENS
from server.economy.accounts import check_name
from server.economy.ledger import change


def default_key_file(db_url: str) -> Path:
    """Next to an SQLite file; for a database server, one file per database in the user's data folder."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database + ".admin-key")
    if url.get_backend_name() == "sqlite":
        return Path("llama-land.admin-key")
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "llama-land"
    data.mkdir(parents=True, exist_ok=True)
    name = "-".join(str(p) for p in (url.get_backend_name(), url.host or "local", url.port or "", url.database or "")
                    if p != "")
    return data / f"{name}.admin-key"


def ensure_key(path: Path) -> str:
    """The admin key, made (readable by its owner only) on first start."""
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()



async def handle(ctx: RequestContext, msg: dict[str, Any]) -> dict[str, Any]:
    ref = msg.get("Id")
    if not ctx.loopback or not hmac.compare_digest(msg["Key"].encode(), ctx.admin_key.encode()):
        raise ProtocolError(Code.FORBIDDEN, "admin requests need the admin key, from this machine", ref)
    if msg["Action"] in CITIZENSHIP:
        return await _citizenship(ctx, msg)
    if msg["Action"] in NPC_KEYS:
        return await _npc_keys(ctx, msg)
    token = msg.get("Token") or "wAR"
    if token not in TOKENS:
        raise ProtocolError(Code.BAD_REQUEST, f"Token must be one of {', '.join(TOKENS)}", ref)
    name = await _account(ctx, msg["Name"] if msg["Action"] == "AdminCredit" else msg["To"], ref)
    if msg["Action"] == "AdminWithdraw":
        return await _withdraw(ctx, msg, token, name)
    done = await change(ctx.bus, token, {"Action": "Mint", "To": name, "Amount": msg["Amount"],
                                         "By": "operator", "Memo": "admin credit", "T": ctx.t})
    if done["Action"] == "Error":
        raise ProtocolError(done["Code"], done["Message"], ref)
    return response(msg, Name=name, Token=token, Amount=msg["Amount"], Balance=done["Balance"])


async def _account(ctx: RequestContext, name: str, ref: str | None) -> str:
    known = await ctx.bus.call("accounts", {"Action": "Lookup", "Player": name})
    if known["Account"] is None:
        raise ProtocolError(Code.UNKNOWN_ACCOUNT, f"no account {name!r}", ref)
    return known["Account"]["Name"]


async def _withdraw(ctx: RequestContext, msg: dict[str, Any], token: str, to: str) -> dict[str, Any]:
    """Move tokens out of a world account (the Oracle's pool, the Fed's offerings) to a player: the operator's
    alone, and never out of a player's account."""
    ref, source = msg.get("Id"), msg["From"]
    if source not in ctx.service_accounts:
        raise ProtocolError(Code.FORBIDDEN, f"{source!r} is not a world account "
                                            f"({', '.join(sorted(ctx.service_accounts))})", ref)
    done = await change(ctx.bus, token, {"Action": "Transfer", "From": source, "To": to,
                                         "Amount": msg["Amount"], "Tags": {"X-Reason": "withdraw"}, "T": ctx.t})
    if done["Action"] == "Error":
        raise ProtocolError(done["Code"], done["Message"], ref)
    return response(msg, From=source, To=to, Token=token, Amount=msg["Amount"], Balance=done["Balance"])


CITIZENSHIP = {"AdminInvite": "MakeInvites", "AdminCitizens": "Citizens", "AdminApprove": "Approve"}


async def _citizenship(ctx: RequestContext, msg: dict[str, Any]) -> dict[str, Any]:
    """Invite codes (`admin invite`), the approval queue (`admin citizens`), an approval (`admin approve NAME`)."""
    ref = msg.get("Id")
    ask: dict[str, Any] = {"Action": CITIZENSHIP[msg["Action"]], "T": ctx.t}
    if msg["Action"] == "AdminInvite":
        count = msg.get("Count") or 1
        if not 1 <= count <= 100:
            raise ProtocolError(Code.BAD_REQUEST, "Count is 1 to 100 invite codes", ref)
        ask["Count"] = count
    elif msg["Action"] == "AdminApprove":
        ask["Player"] = msg["Name"]
    done = await ctx.bus.call("accounts", ask)
    if done["Action"] == "Error":
        raise ProtocolError(done["Code"], done["Message"], ref)
    return response(msg, **{k: v for k, v in done.items() if k not in ("Action", "ReplyTo")})


NPC_KEYS = {"AdminNpcAdd": "AddNpcKey", "AdminNpcRevoke": "RevokeNpcKey", "AdminNpcs": "NpcKeys"}


async def _npc_keys(ctx: RequestContext, msg: dict[str, Any]) -> dict[str, Any]:
    """NPC keys for outside programs (`admin npc add NAME --room R --at X,Y`, `admin npc revoke NAME`, `admin npc
    list`); a key issued again, or revoked, disconnects the program that used the old one."""
    ref = msg.get("Id")
    ask: dict[str, Any] = {"Action": NPC_KEYS[msg["Action"]], "T": ctx.t}
    if msg["Action"] == "AdminNpcAdd":
        try:
            check_name(msg["Name"], ctx.npc_names)
        except Refused as no:
            raise ProtocolError(no.code, no.message, ref) from None
        room = ctx.world.rooms.get(msg["Room"]) if ctx.world is not None else None
        if room is None:
            raise ProtocolError(Code.BAD_REQUEST, f"no room {msg['Room']!r} in this world "
                                                  f"({', '.join(sorted(ctx.world.rooms)) if ctx.world else ''})", ref)
        if not room.standable(msg["X"], msg["Y"]):
            raise ProtocolError(Code.BAD_REQUEST, f"({msg['X']}, {msg['Y']}) in {room.name} is not a free floor "
                                                  f"tile: an NPC must stand where players can walk up to it", ref)
        ask.update(Name=msg["Name"], Room=msg["Room"], X=msg["X"], Y=msg["Y"])
    elif msg["Action"] == "AdminNpcRevoke":
        ask["Name"] = msg["Name"]
    done = await ctx.bus.call("accounts", ask)
    if done["Action"] == "Error":
        raise ProtocolError(done["Code"], done["Message"], ref)
    if msg["Action"] == "AdminNpcRevoke" or done.get("Replaced"):
        ctx.bus.send(f"npc:{done['Id']}", {"Action": "KeyVoid", "T": ctx.t})  # its program is disconnected
    if msg["Action"] == "AdminNpcs":
        statuses = await asyncio.gather(*(program_status(ctx, npc) for npc in done["Npcs"]))
        done["Npcs"] = [{**npc, "Connected": status} for npc, status in zip(done["Npcs"], statuses)]
    return response(msg, **{k: v for k, v in done.items() if k not in ("Action", "ReplyTo")})


async def program_status(ctx: RequestContext, npc: dict[str, Any]) -> dict[str, Any] | None:
    """What the NPC's program is doing now, asked of its actor wherever in the world it is (it exists only while
    the program is connected); None if it is not connected."""
    if npc["Revoked"]:
        return None
    try:
        got = await ctx.bus.call(f"npc:{npc['Id']}", {"Action": "Status"}, timeout=2.0)
    except (LookupError, TimeoutError, asyncio.TimeoutError):
        return None
    return {k: got[k] for k in ("Since", "Declared", "Actions", "Pending", "Answered")}
