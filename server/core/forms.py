"""Declared actions: what an NPC program offers, checked as data, and a player's fields checked against it.

An NPC program (docs/npcs-sdk.md) declares each action it serves — a name, a title, a description, its fields in
a small JSON-schema subset, and its price. The server checks a declaration once, when it arrives, and every use
of it against the result; clients build their forms from the same data (RoomJoined.Npcs, NpcJoined). Pure code:
no sockets, no clock, shared by the server, the SDK and the Arcade client.

A field is `{"type": "string", "minLength": 0, "maxLength": 40}`, `{"type": "integer", "minimum": 1,
"maximum": 10}` or `{"type": "string", "enum": ["heads", "tails"]}`, each with an optional `title`,
`description` and `default` (a field with a default may be left out; every other field is required). A price is
`{"Kind": "none"}`, `{"Kind": "fixed", "Amount": <base units>, "Token": "wAR"}` or `{"Kind": "quoted",
"Token": "LLAMA", "Max": <base units>}` (the program names the amount per request, at most Max).
"""

from __future__ import annotations

import re
from typing import Any

from server.core.units import TOKENS, UNIT

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,23}$")
MAX_ACTIONS = 8
MAX_FIELDS = 8
MAX_TITLE = 40
MAX_DESCRIPTION = 200
MAX_STRING = 500  # the longest string field a program may ask for
MAX_ENUM = 16
MAX_INT = 10**15
MAX_PRICE = 10_000 * UNIT  # per request, in base units
FIELD_KEYS = {"type", "title", "description", "default", "minLength", "maxLength", "minimum", "maximum", "enum"}
ACTION_KEYS = {"Name", "Title", "Description", "Fields", "Price"}


class FormError(ValueError):
    """A declaration or a request's fields that do not fit; the message says which part and why."""


def _text(value: Any, what: str, most: int, least: int = 0) -> str:
    if not isinstance(value, str) or not least <= len(value) <= most:
        raise FormError(f"{what} is a string of {least}-{most} characters")
    return value


def _int(value: Any, what: str, least: int = -MAX_INT, most: int = MAX_INT) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= most:
        raise FormError(f"{what} is a whole number from {least} to {most}")
    return value


def check_field(name: str, schema: Any, where: str) -> dict[str, Any]:
    """One field's schema, normalized (bounds filled in)."""
    what = f"{where} field {name!r}"
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise FormError(f"{what}: a field name is 1-24 lower-case letters, digits or _, starting with a letter")
    if not isinstance(schema, dict):
        raise FormError(f"{what}: a field is a map like {{\"type\": \"integer\", \"minimum\": 1}}")
    unknown = set(schema) - FIELD_KEYS
    if unknown:
        raise FormError(f"{what}: unknown keyword {sorted(unknown)[0]!r} (known: {', '.join(sorted(FIELD_KEYS))})")
    out: dict[str, Any] = {"type": schema.get("type"), "title": _text(schema.get("title", name), f"{what} title",
                                                                     MAX_TITLE, 1)}
    if "description" in schema:
        out["description"] = _text(schema["description"], f"{what} description", MAX_DESCRIPTION)
    if out["type"] == "integer":
        if {"minLength", "maxLength", "enum"} & set(schema):
            raise FormError(f"{what}: an integer takes minimum and maximum, not string keywords")
        out["minimum"] = _int(schema.get("minimum", 0), f"{what} minimum")
        out["maximum"] = _int(schema.get("maximum", MAX_INT), f"{what} maximum")
        if out["minimum"] > out["maximum"]:
            raise FormError(f"{what}: minimum {out['minimum']} is above maximum {out['maximum']}")
    elif out["type"] == "string" and "enum" in schema:
        if {"minLength", "maxLength", "minimum", "maximum"} & set(schema):
            raise FormError(f"{what}: an enum lists its choices; it takes no length or bounds")
        choices = schema["enum"]
        if not isinstance(choices, list) or not 1 <= len(choices) <= MAX_ENUM or len(set(map(str, choices))) \
                != len(choices):
            raise FormError(f"{what}: enum is a list of 1-{MAX_ENUM} different strings")
        out["enum"] = [_text(c, f"{what} choice", MAX_TITLE, 1) for c in choices]
    elif out["type"] == "string":
        if {"minimum", "maximum"} & set(schema):
            raise FormError(f"{what}: a string takes minLength and maxLength, not minimum/maximum")
        out["minLength"] = _int(schema.get("minLength", 0), f"{what} minLength", 0, MAX_STRING)
        out["maxLength"] = _int(schema.get("maxLength", 100), f"{what} maxLength", 1, MAX_STRING)
        if out["minLength"] > out["maxLength"]:
            raise FormError(f"{what}: minLength {out['minLength']} is above maxLength {out['maxLength']}")
    else:
        raise FormError(f"{what}: type is \"string\" or \"integer\", got {out['type']!r}")
    if "default" in schema:
        out["default"] = check_value(out, schema["default"], f"{what} default")
    return out


def check_price(price: Any, where: str) -> dict[str, Any]:
    if price is None:
        price = {"Kind": "none"}
    if not isinstance(price, dict) or price.get("Kind") not in ("none", "fixed", "quoted"):
        raise FormError(f"{where} price: Kind is \"none\", \"fixed\" or \"quoted\"")
    if price["Kind"] == "none":
        if set(price) != {"Kind"}:
            raise FormError(f"{where} price: a free action names no amount or token")
        return {"Kind": "none"}
    token = price.get("Token", "wAR")
    if token not in TOKENS:
        raise FormError(f"{where} price: Token is one of {', '.join(TOKENS)}, got {token!r}")
    amount_key = "Amount" if price["Kind"] == "fixed" else "Max"
    if set(price) - {"Kind", "Token", amount_key}:
        raise FormError(f"{where} price: a {price['Kind']} price takes Kind, Token and {amount_key}")
    amount = _int(price.get(amount_key), f"{where} price {amount_key} (base units)", 1, MAX_PRICE)
    return {"Kind": price["Kind"], "Token": token, amount_key: amount}


def check_declarations(actions: Any) -> list[dict[str, Any]]:
    """The program's Declare, normalized; FormError names the first thing wrong."""
    if not isinstance(actions, list) or not 1 <= len(actions) <= MAX_ACTIONS:
        raise FormError(f"Actions is a list of 1-{MAX_ACTIONS} actions")
    out, names = [], set()
    for i, decl in enumerate(actions):
        if not isinstance(decl, dict):
            raise FormError(f"action {i + 1} is a map with {', '.join(sorted(ACTION_KEYS))}")
        name = decl.get("Name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise FormError(f"action {i + 1}: Name is 1-24 lower-case letters, digits or _, starting with a letter")
        where = f"action {name!r}"
        if name in names:
            raise FormError(f"{where} is declared twice")
        unknown = set(decl) - ACTION_KEYS
        if unknown:
            raise FormError(f"{where}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(ACTION_KEYS))})")
        fields = decl.get("Fields", {})
        if not isinstance(fields, dict) or len(fields) > MAX_FIELDS:
            raise FormError(f"{where}: Fields maps up to {MAX_FIELDS} field names to their schemas")
        names.add(name)
        out.append({"Name": name, "Title": _text(decl.get("Title", name), f"{where} Title", MAX_TITLE, 1),
                    "Description": _text(decl.get("Description", ""), f"{where} Description", MAX_DESCRIPTION),
                    "Fields": {f: check_field(f, s, where) for f, s in fields.items()},
                    "Price": check_price(decl.get("Price"), where)})
    return out


def check_value(schema: dict[str, Any], value: Any, what: str) -> Any:
    if schema["type"] == "integer":
        return _int(value, what, schema["minimum"], schema["maximum"])
    if "enum" in schema:
        if value not in schema["enum"]:
            raise FormError(f"{what} is one of {', '.join(schema['enum'])}, got {value!r}")
        return value
    if not isinstance(value, str):
        raise FormError(f"{what} is a string")
    value = " ".join(value.split())  # as chat is: no runs of spaces, no control characters
    return _text(value, what, schema["maxLength"], schema["minLength"])


def check_fields(decl: dict[str, Any], fields: Any) -> dict[str, Any]:
    """A request's fields checked against the action's (normalized) declaration: every value in its bounds, the
    defaults filled in, nothing undeclared."""
    if fields is None:
        fields = {}
    if not isinstance(fields, dict):
        raise FormError("Fields is a map of field name to value")
    declared = decl["Fields"]
    unknown = [f for f in fields if f not in declared]
    if unknown:
        raise FormError(f"{decl['Name']} has no field {unknown[0]!r} (its fields: {', '.join(declared) or 'none'})")
    out = {}
    for name, schema in declared.items():
        if name not in fields:
            if "default" not in schema:
                raise FormError(f"{name} is required")
            out[name] = schema["default"]
        else:
            out[name] = check_value(schema, fields[name], name)
    return out
