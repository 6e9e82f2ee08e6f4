"""`llama-land admin`: operator actions on a running server on this machine, authenticated by the admin key file
the server writes at start — credit and withdraw (server/economy/admin.py), and citizenship: invite codes, the
approval queue, approvals (server/economy/citizens.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path


def fail(message: str) -> None:
    print(f"llama-land: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def add_admin_command(sub: argparse._SubParsersAction, default_db: str) -> None:
    adm = sub.add_parser("admin", help="operator actions on a running server",
                         description="Operator actions on a running server on this machine, authenticated by the "
                                     "admin key file the server writes at start.")
    adm_sub = adm.add_subparsers(dest="admin_command", required=True)
    credit = adm_sub.add_parser("credit", help="credit a player with tokens (wAR; LLAMA only comes from the Fed)")
    credit.add_argument("name", help="the player's name")
    credit.add_argument("amount", help="amount in whole tokens, e.g. 25 or 0.5")
    withdraw = adm_sub.add_parser("withdraw", help="move tokens out of a world account (e.g. the Oracle's pool) "
                                                   "to a player")
    withdraw.add_argument("account", help="the world account, e.g. oracle")
    withdraw.add_argument("amount", help="amount in whole tokens, e.g. 25 or 0.5")
    withdraw.add_argument("--to", required=True, help="the player who receives it")
    invite = adm_sub.add_parser("invite", help="make invite codes for a world whose citizens are invited")
    invite.add_argument("--count", type=int, default=1, help="how many codes (1-100, default 1)")
    citizens = adm_sub.add_parser("citizens", help="the players waiting for approval (and how many are citizens)")
    approve = adm_sub.add_parser("approve", help="make a player a citizen (the starting allowance follows)")
    approve.add_argument("name", help="the player's name")
    for cmd, token in ((credit, "wAR"), (withdraw, "LLAMA"), (invite, None), (citizens, None), (approve, None)):
        if token:
            cmd.add_argument("--token", default=token, help=f"token (default: {token})")
        cmd.add_argument("--url", default="ws://127.0.0.1:8765/", help="the server's websocket URL")
        cmd.add_argument("--db", default=default_db, help="the server's database URL, to find its admin key")
        cmd.add_argument("--admin-key-file", type=Path, help="the admin key file (default: next to the database)")
        cmd.set_defaults(fn=cmd_admin)


def request_of(args: argparse.Namespace, key: str) -> dict:
    from server.core.units import parse_amount

    command = args.admin_command
    if command == "invite":
        return {"Action": "AdminInvite", "Key": key, "Count": args.count}
    if command == "citizens":
        return {"Action": "AdminCitizens", "Key": key}
    if command == "approve":
        return {"Action": "AdminApprove", "Key": key, "Name": args.name}
    try:
        amount = parse_amount(args.amount)
    except ValueError as exc:
        fail(str(exc))
    if amount <= 0:
        fail(f"an amount is more than 0, got {args.amount!r}")
    if command == "credit":
        return {"Action": "AdminCredit", "Key": key, "Name": args.name, "Amount": amount, "Token": args.token}
    return {"Action": "AdminWithdraw", "Key": key, "From": args.account, "To": args.to, "Amount": amount,
            "Token": args.token}


def cmd_admin(args: argparse.Namespace) -> None:
    from client.net import GameClient, ServerError
    from server.core.units import show
    from server.economy.admin import default_key_file

    key_file = args.admin_key_file or default_key_file(args.db)
    if not key_file.is_file():
        fail(f"no admin key at {key_file} (the server writes it at start; pass --db or --admin-key-file)")
    request = request_of(args, key_file.read_text().strip())

    async def ask() -> dict:
        client = await GameClient.connect(args.url)
        try:
            return await client.request(request.pop("Action"), **request)
        finally:
            await client.close()

    try:
        done = asyncio.run(ask())
    except ServerError as exc:
        fail(f"{exc.code}: {exc.frame.get('Message')}")
    except OSError as exc:
        fail(f"cannot reach {args.url}: {exc}")
    command = args.admin_command
    if command == "credit":
        print(f"credited {args.amount} {done['Token']} to {done['Name']}; balance now "
              f"{show(done['Balance'])} {done['Token']}")
    elif command == "withdraw":
        print(f"withdrew {args.amount} {done['Token']} from {done['From']} to {done['To']}; {done['From']} now "
              f"holds {show(done['Balance'])} {done['Token']}")
    elif command == "invite":
        print("\n".join(done["Codes"]))
    elif command == "citizens":
        print(f"mode {done['Mode']}: {done['Citizens']} citizens, {done['InvitesUnused']} unused invite codes; "
              f"{len(done['Applicants'])} waiting for approval" + (":" if done["Applicants"] else ""))
        for name, _ in done["Applicants"]:
            print(f"  {name}")
    else:
        print(f"{done['Name']} is a citizen")
