"""Operator requests over the game port: `llama-land admin credit NAME AMOUNT --token wAR`.

Only from a loopback address, and only with the admin key that the server keeps in a file readable by the
operator alone (next to the SQLite database, or where --admin-key-file says). Credits are mints by "operator":
the wAR ledger allows them; the LLAMA ledger refuses them, because only the Fed mints LLAMA.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from .ledger import DECIMALS, TOKENS
from .protocol import Code, ProtocolError, response

if TYPE_CHECKING:
    from .session import Connection


def default_key_file(db_url: str) -> Path:
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database + ".admin-key")
    return Path("llama-land.admin-key")


def ensure_key(path: Path) -> str:
    """The admin key, made (readable by its owner only) on first start."""
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def base_units(amount: str) -> int:
    """'2.5' wAR -> 2500000000000 base units; at most 12 decimals, more than zero."""
    try:
        value = Decimal(amount) * 10**DECIMALS
    except InvalidOperation:
        raise ValueError(f"not an amount: {amount!r}") from None
    if value <= 0 or value != value.to_integral_value():
        raise ValueError(f"an amount is more than 0 with at most {DECIMALS} decimals, got {amount!r}")
    return int(value)


def _loopback(conn: "Connection") -> bool:
    host = (conn.ws.remote_address or ("",))[0]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def handle(conn: "Connection", msg: dict[str, Any], now: int) -> None:
    ref = msg.get("Id")
    if not _loopback(conn) or not hmac.compare_digest(msg["Key"].encode(), conn.server.admin_key.encode()):
        raise ProtocolError(Code.FORBIDDEN, "admin requests need the admin key, from this machine", ref)
    token = msg.get("Token") or "wAR"
    if token not in TOKENS:
        raise ProtocolError(Code.BAD_REQUEST, f"Token must be one of {', '.join(TOKENS)}", ref)
    known = await conn.server.bus.call("accounts", {"Action": "Lookup", "Player": msg["Name"]})
    if known["Account"] is None:
        raise ProtocolError(Code.UNKNOWN_ACCOUNT, f"no account {msg['Name']!r}", ref)
    name = known["Account"]["Name"]
    done = await conn.server.bus.call(f"token:{token}", {"Action": "Mint", "To": name, "Amount": msg["Amount"],
                                                         "By": "operator", "Memo": "admin credit", "T": now})
    if done["Action"] == "Error":
        raise ProtocolError(done["Code"], done["Message"], ref)
    conn.send(response(msg, Name=name, Token=token, Amount=msg["Amount"], Balance=done["Balance"]))
