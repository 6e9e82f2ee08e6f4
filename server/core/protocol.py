"""The wire protocol: one msgpack map per binary websocket frame.

Sans-I/O: this module turns bytes into validated requests and events into bytes. It never touches a socket,
so the server, the headless client, the bots and the Arcade client all share it. docs/protocol.md is the
human-facing description of everything defined here; keep the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

VERSION = 1
SERVER_NAME = "llama-land/0.1"
MAX_FRAME = 16 * 1024  # bytes; websockets closes with 1009 above this
MAX_ID = 64


class Code:
    """Stable error codes, every one the server sends (in Error frames, and in the Code of NpcFailed and
    PetitionFailed events). Clients switch on these; never rename one. docs/protocol.md lists each with its
    meaning, and a test checks that list, this class and the code that uses them agree."""

    # the frame and the session
    MALFORMED = "MALFORMED"  # not msgpack
    NOT_A_MAP = "NOT_A_MAP"  # msgpack, but not a map
    BAD_REQUEST = "BAD_REQUEST"  # missing field, wrong type, bad value
    UNKNOWN_ACTION = "UNKNOWN_ACTION"
    HELLO_REQUIRED = "HELLO_REQUIRED"
    VERSION_MISMATCH = "VERSION_MISMATCH"
    NOT_LOGGED_IN = "NOT_LOGGED_IN"
    ALREADY_LOGGED_IN = "ALREADY_LOGGED_IN"
    BAD_NAME = "BAD_NAME"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    NAME_TAKEN = "NAME_TAKEN"
    BAD_CREDENTIALS = "BAD_CREDENTIALS"
    SESSION_EXPIRED = "SESSION_EXPIRED"
    BAD_TICKET = "BAD_TICKET"
    NOT_A_CITIZEN = "NOT_A_CITIZEN"
    BAD_INVITE = "BAD_INVITE"
    TOO_MANY_ACCOUNTS = "TOO_MANY_ACCOUNTS"
    RATE_LIMITED = "RATE_LIMITED"
    BUSY = "BUSY"
    UNAVAILABLE = "UNAVAILABLE"
    FORBIDDEN = "FORBIDDEN"
    INTERNAL = "INTERNAL"
    # the world: movement, chat, reach
    MOVE_OFF_MAP = "MOVE_OFF_MAP"
    MOVE_BLOCKED = "MOVE_BLOCKED"
    MOVE_THROUGH_WALL = "MOVE_THROUGH_WALL"
    MOVE_TOO_FAR = "MOVE_TOO_FAR"
    MOVE_TOO_FAST = "MOVE_TOO_FAST"
    CHAT_EMPTY = "CHAT_EMPTY"
    CHAT_TOO_LONG = "CHAT_TOO_LONG"
    UNKNOWN_PLAYER = "UNKNOWN_PLAYER"
    NO_NPC_HERE = "NO_NPC_HERE"
    TOO_FAR = "TOO_FAR"
    # the ledgers
    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    BAD_AMOUNT = "BAD_AMOUNT"
    NOT_A_MINTER = "NOT_A_MINTER"
    CAP_EXCEEDED = "CAP_EXCEEDED"
    DUPLICATE_REF = "DUPLICATE_REF"
    ALREADY_GRANTED = "ALREADY_GRANTED"
    DUPLICATE_ESCROW = "DUPLICATE_ESCROW"
    UNKNOWN_ESCROW = "UNKNOWN_ESCROW"
    # the market
    BAD_ORDER = "BAD_ORDER"
    TOO_MANY_ORDERS = "TOO_MANY_ORDERS"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    # NPC requests
    BAD_PETITION = "BAD_PETITION"
    COOLDOWN = "COOLDOWN"
    BAD_TOPIC = "BAD_TOPIC"
    BAD_QUESTION = "BAD_QUESTION"
    BAD_BET = "BAD_BET"
    STALE_COMMITMENT = "STALE_COMMITMENT"
    POOL_TOO_SMALL = "POOL_TOO_SMALL"
    PRICE_ABOVE_MAX = "PRICE_ABOVE_MAX"
    # NPC programs (outside programs playing an NPC; docs/npcs-sdk.md)
    BAD_DECLARATION = "BAD_DECLARATION"  # a program's Declare does not fit the action schema
    BAD_FIELDS = "BAD_FIELDS"  # a player's Use: fields outside what the action declared
    UNKNOWN_REQUEST = "UNKNOWN_REQUEST"  # a program answered a request that is not open (late: refunded already)
    NPC_ERROR = "NPC_ERROR"  # the program answered with an error: refunded
    NPC_TIMEOUT = "NPC_TIMEOUT"  # the program did not answer in time: refunded
    NPC_GONE = "NPC_GONE"  # the program disconnected with the request open: refunded
    # the inference herd (a failed job is always refunded)
    UNKNOWN_TEMPLATE = "UNKNOWN_TEMPLATE"
    UNKNOWN_QUOTE = "UNKNOWN_QUOTE"
    QUOTE_EXPIRED = "QUOTE_EXPIRED"
    QUEUE_FULL = "QUEUE_FULL"
    TOO_MANY_JOBS = "TOO_MANY_JOBS"
    PROMPT_TOO_LONG = "PROMPT_TOO_LONG"
    INFERENCE_FAILED = "INFERENCE_FAILED"
    INVALID_OUTPUT = "INVALID_OUTPUT"
    WORKER_CRASHED = "WORKER_CRASHED"
    WORKER_TIMEOUT = "WORKER_TIMEOUT"
    WORKER_START_FAILED = "WORKER_START_FAILED"
    SHUTDOWN = "SHUTDOWN"  # the server stopped first; a petition stays in the King's line
    RESTART = "RESTART"  # the server restarted before a petition was logged; the offering is refunded


class ProtocolError(Exception):
    """A request the server refuses. Carries what the Error frame needs."""

    def __init__(self, code: str, message: str, ref: str | None = None, **extra: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref
        self.extra = extra

    def frame(self) -> dict[str, Any]:
        return error(self.code, self.message, self.ref, **self.extra)


class Refused(Exception):
    """A rule said no. `code` is one of Code; the message is for a person. The session turns it into an Error
    frame with the request's Ref."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Field:
    type: type | tuple[type, ...]
    required: bool = True
    max_len: int | None = None
    choices: tuple[Any, ...] | None = None


DIRECTIONS = ("N", "S", "E", "W", "NE", "NW", "SE", "SW")

# Every client action and its fields. "Id" and "Action" are checked for all of them.
ACTIONS: dict[str, dict[str, Field]] = {
    "Hello": {"Version": Field(int)},
    "Register": {"Name": Field(str, max_len=64), "Password": Field(str, max_len=256),
                 "Invite": Field(str, required=False, max_len=64)},
    "BecomeCitizen": {"Invite": Field(str, required=False, max_len=64)},
    "Citizenship": {},
    "Login": {"Name": Field(str, max_len=64), "Password": Field(str, max_len=256)},
    "Resume": {"Token": Field(str, required=False, max_len=128), "Ticket": Field(str, required=False, max_len=128)},
    "Logout": {},
    "Move": {
        "Dir": Field(str, required=False, choices=DIRECTIONS),
        "X": Field(int, required=False),
        "Y": Field(int, required=False),
    },
    "Chat": {"Text": Field(str, max_len=4096), "Scope": Field(str, required=False, choices=("room", "near"))},
    "Whisper": {"To": Field(str, max_len=64), "Text": Field(str, max_len=4096)},
    "Who": {},
    "Ping": {},
    "HerdInfo": {},
    "Balance": {"Token": Field(str, required=False, max_len=16)},
    "Transfer": {"Token": Field(str, required=False, max_len=16), "Recipient": Field(str, max_len=64),
                 "Quantity": Field(int), "Tags": Field(dict, required=False),
                 "Key": Field(str, required=False, max_len=64)},
    "TokenInfo": {"Token": Field(str, required=False, max_len=16)},
    "Balances": {"Token": Field(str, required=False, max_len=16)},
    "Petition": {"Text": Field(str, max_len=1000), "Key": Field(str, required=False, max_len=64)},
    "Petitions": {},
    "FedInfo": {"Epoch": Field(int, required=False)},
    "Joke": {"Topic": Field(str, max_len=200), "MaxFee": Field(int, required=False)},
    "Prophecy": {"Question": Field(str, max_len=1000), "MaxFee": Field(int, required=False)},
    "Quote": {"Service": Field(str, choices=("petition", "joke", "prophecy")), "Text": Field(str, max_len=1000)},
    "OracleInfo": {},
    "TraderInfo": {},
    "HighLow": {"Bet": Field(int), "Guess": Field(str, choices=("high", "low")), "ClientSeed": Field(str, max_len=64),
                "Commitment": Field(str, max_len=64)},
    "PlaceOrder": {"Side": Field(str, choices=("buy", "sell")), "Price": Field(int), "Quantity": Field(int),
                   "TTL": Field(int, required=False)},
    "CancelOrder": {"OrderId": Field(str, max_len=64)},
    "MyOrders": {},
    "OrderBook": {"Depth": Field(int, required=False)},
    "Trades": {"Limit": Field(int, required=False)},
    "Candles": {"Interval": Field(str, required=False, choices=("1m", "1h")), "Limit": Field(int, required=False)},
    "MarketInfo": {},
    "Use": {"Npc": Field(str, max_len=64), "Name": Field(str, max_len=64), "Fields": Field(dict, required=False),
            "MaxPrice": Field(int, required=False)},
    "AskPrice": {"Npc": Field(str, max_len=64), "Name": Field(str, max_len=64), "Fields": Field(dict, required=False)},
    # an NPC program's requests (after NpcLogin)
    "NpcLogin": {"Name": Field(str, max_len=64), "Key": Field(str, max_len=128)},
    "Declare": {"Actions": Field(list)},
    "Price": {"RequestId": Field(str, max_len=64), "Amount": Field(int)},
    "Answer": {"RequestId": Field(str, max_len=64), "Text": Field(str, required=False, max_len=4096),
               "Error": Field(str, required=False, max_len=1000), "Data": Field(dict, required=False)},
    "Announce": {"Text": Field(str, max_len=4096)},
    "Tell": {"To": Field(str, max_len=64), "Text": Field(str, max_len=4096)},
    "Pay": {"To": Field(str, max_len=64), "Quantity": Field(int), "Token": Field(str, required=False, max_len=16),
            "Key": Field(str, required=False, max_len=64), "Memo": Field(str, required=False, max_len=100)},
    "Funds": {"Token": Field(str, required=False, max_len=16)},
    "Outcomes": {"RequestIds": Field(list)},
    "AdminNpcAdd": {"Key": Field(str, max_len=128), "Name": Field(str, max_len=64), "Room": Field(str, max_len=64),
                    "X": Field(int), "Y": Field(int)},
    "AdminNpcRevoke": {"Key": Field(str, max_len=128), "Name": Field(str, max_len=64)},
    "AdminNpcs": {"Key": Field(str, max_len=128)},
    "AdminInvite": {"Key": Field(str, max_len=128), "Count": Field(int, required=False)},
    "AdminCitizens": {"Key": Field(str, max_len=128)},
    "AdminApprove": {"Key": Field(str, max_len=128), "Name": Field(str, max_len=64)},
    "AdminWithdraw": {"Key": Field(str, max_len=128), "From": Field(str, max_len=64), "To": Field(str, max_len=64),
                      "Amount": Field(int), "Token": Field(str, required=False, max_len=16)},
    "AdminCredit": {"Key": Field(str, max_len=128), "Name": Field(str, max_len=64), "Amount": Field(int),
                    "Token": Field(str, required=False, max_len=16)},
}

# Actions whose success needs no response frame when the request carries no Id (high-rate traffic).
FIRE_AND_FORGET = frozenset({"Move"})


def _type_name(t: type | tuple[type, ...]) -> str:
    if isinstance(t, tuple):
        return " or ".join(x.__name__ for x in t)
    return {str: "string", int: "integer", bool: "boolean", list: "array", dict: "map"}.get(t, t.__name__)


def ref_of(data: bytes | str) -> str | None:
    """The Id of a frame that will not be handled (dropped for rate), for the answer's Ref; None if it has none."""
    try:
        msg = msgpack.unpackb(data, raw=False, strict_map_key=True) if isinstance(data, bytes) else None
    except Exception:
        return None
    ref = msg.get("Id") if isinstance(msg, dict) else None
    return ref if isinstance(ref, str) and len(ref) <= MAX_ID else None


def decode(data: bytes | str) -> dict[str, Any]:
    """Parse one frame into a validated request map, or raise ProtocolError."""
    if isinstance(data, str):
        raise ProtocolError(Code.MALFORMED, "text frames are not accepted; send msgpack in a binary frame")
    try:
        msg = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception:
        raise ProtocolError(Code.MALFORMED, "frame is not valid msgpack") from None
    if not isinstance(msg, dict):
        raise ProtocolError(Code.NOT_A_MAP, f"frame must be a msgpack map, got {type(msg).__name__}")
    ref = msg.get("Id")
    if ref is not None and (not isinstance(ref, str) or len(ref) > MAX_ID):
        raise ProtocolError(Code.BAD_REQUEST, f"Id must be a string of at most {MAX_ID} characters")
    action = msg.get("Action")
    if not isinstance(action, str):
        raise ProtocolError(Code.BAD_REQUEST, "Action must be a string", ref)
    spec = ACTIONS.get(action)
    if spec is None:
        raise ProtocolError(Code.UNKNOWN_ACTION, f"unknown action {action[:40]!r}", ref)
    if ref is None and action not in FIRE_AND_FORGET:
        raise ProtocolError(Code.BAD_REQUEST, f"{action} needs an Id", ref)
    for name, field in spec.items():
        value = msg.get(name)
        if value is None:
            if field.required:
                raise ProtocolError(Code.BAD_REQUEST, f"{action} needs field {name} ({_type_name(field.type)})", ref)
            continue
        # bool is an int in Python; a client sending true for a coordinate has a bug worth reporting.
        if not isinstance(value, field.type) or (isinstance(value, bool) and field.type is not bool):
            raise ProtocolError(
                Code.BAD_REQUEST, f"{action}.{name} must be {_type_name(field.type)}, got {type(value).__name__}", ref
            )
        if field.max_len is not None and len(value) > field.max_len:
            raise ProtocolError(Code.BAD_REQUEST, f"{action}.{name} is longer than {field.max_len}", ref)
        if field.choices is not None and value not in field.choices:
            raise ProtocolError(Code.BAD_REQUEST, f"{action}.{name} must be one of {', '.join(field.choices)}", ref)
    return msg


def encode(msg: dict[str, Any]) -> bytes:
    return msgpack.packb(msg, use_bin_type=True)


def unpack(data: bytes) -> Any:
    """Decode a server frame on the client side (no request validation)."""
    return msgpack.unpackb(data, raw=False)


def response(request: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"Action": f"{request['Action']}-Response", "Ref": request.get("Id"), **fields}


def error(code: str, message: str, ref: str | None = None, **extra: Any) -> dict[str, Any]:
    frame = {"Action": "Error", "Code": code, "Message": message, **extra}
    if ref is not None:
        frame["Ref"] = ref
    return frame


# --- building frames from pre-encoded parts (used by the tick, which sends one frame per interest cell) ---


def array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def map_header(n: int) -> bytes:
    assert n < 16
    return bytes((0x80 | n,))
