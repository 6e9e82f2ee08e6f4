"""`llama-land admin`: operator actions on a running server on this machine, authenticated by the admin key file
the server writes at start — credit and withdraw (server/economy/admin.py), and citizenship: invite codes, the
approval queue, approvals (server/economy/citizens.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
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
    npc = adm_sub.add_parser("npc", help="NPC keys for outside programs (docs/npcs-sdk.md): add, revoke, list",
                             description="An NPC key lets an outside program join the world as the NPC NAME, "
                                         "standing in one room at one spot. Issuing a key again for a name voids "
                                         "the older one; revoking disconnects the program.")
    npc_sub = npc.add_subparsers(dest="npc_command", required=True)
    npc_add = npc_sub.add_parser("add", help="issue a key (printed once: the server keeps only its hash)")
    npc_add.add_argument("name", help="the NPC's name (3-20 letters, digits, _ or -), also its account")
    npc_add.add_argument("--room", required=True, help="the room it stands in")
    npc_add.add_argument("--at", required=True, metavar="X,Y", help="the tile it stands on")
    npc_revoke = npc_sub.add_parser("revoke", help="revoke a key; its program is disconnected")
    npc_revoke.add_argument("name")
    npc_list = npc_sub.add_parser("list", help="the NPC keys issued, and where each NPC stands")
    for cmd, token in ((credit, "wAR"), (withdraw, "LLAMA"), (invite, None), (citizens, None), (approve, None),
                       (npc_add, None), (npc_revoke, None), (npc_list, None)):
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
    if command == "npc":
        return npc_request(args, key)
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


def npc_request(args: argparse.Namespace, key: str) -> dict:
    if args.npc_command == "list":
        return {"Action": "AdminNpcs", "Key": key}
    if args.npc_command == "revoke":
        return {"Action": "AdminNpcRevoke", "Key": key, "Name": args.name}
    try:
        x, y = (int(v) for v in args.at.split(","))
    except ValueError:
        fail(f"--at is X,Y in tiles, e.g. 30,12; got {args.at!r}")
    return {"Action": "AdminNpcAdd", "Key": key, "Name": args.name, "Room": args.room, "X": x, "Y": y}


def print_npc(done: dict, command: str) -> None:
    if command == "add":
        print(f"NPC key for {done['Name']} in {done['Room']} at ({done['X']}, {done['Y']})"
              + (" (the older key no longer works)" if done["Replaced"] else "") + ":")
        print(done["Key"])
    elif command == "revoke":
        print(f"{done['Name']}'s key is revoked; its program, if connected, was disconnected")
    else:
        for n in done["Npcs"]:
            print(f"{n['Name']:<20} {n['Room']} ({n['X']}, {n['Y']})  {npc_state(n)}")
        if not done["Npcs"]:
            print("no NPC keys issued")


def npc_state(npc: dict) -> str:
    if npc["Revoked"]:
        return "revoked"
    live = npc.get("Connected")
    if not live:
        return "not connected"
    since = time.strftime("%Y-%m-%d %H:%M", time.localtime(live["Since"] / 1000))
    offers = ", ".join(live["Actions"]) if live["Declared"] else "nothing declared yet"
    return f"connected since {since}: {offers}; {live['Pending']} open, {live['Answered']} answered"


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
    elif command == "npc":
        print_npc(done, args.npc_command)
    elif command == "citizens":
        print(f"mode {done['Mode']}: {done['Citizens']} citizens, {done['InvitesUnused']} unused invite codes; "
              f"{len(done['Applicants'])} waiting for approval" + (":" if done["Applicants"] else ""))
        for name, _ in done["Applicants"]:
            print(f"  {name}")
    else:
        print(f"{done['Name']} is a citizen")
