"""Declared actions (server/core/forms.py) as pure code: what a declaration may say, what it normalizes to, and a
player's fields checked against it; and the SDK's @action turning a class into those declarations."""

import pytest

from client.npc_sdk import Choice, Npc, Number, Text, action, fixed, quoted
from server.core.forms import FormError, check_declarations, check_fields
from server.core.units import UNIT


def one(**decl):
    return check_declarations([{"Name": "a", **decl}])[0]


def test_a_declaration_is_normalized_with_every_bound_filled_in():
    d = one(Fields={"s": {"type": "string"}, "n": {"type": "integer", "maximum": 9}, "e": {"type": "string",
                                                                                          "enum": ["x", "y"]}})
    assert d["Title"] == "a" and d["Description"] == "" and d["Price"] == {"Kind": "none"}
    assert d["Fields"]["s"] == {"type": "string", "title": "s", "minLength": 0, "maxLength": 100}
    assert d["Fields"]["n"] == {"type": "integer", "title": "n", "minimum": 0, "maximum": 9}
    assert d["Fields"]["e"] == {"type": "string", "title": "e", "enum": ["x", "y"]}
    assert one(Price={"Kind": "fixed", "Amount": 5})["Price"] == {"Kind": "fixed", "Token": "wAR", "Amount": 5}
    assert one(Price={"Kind": "quoted", "Max": 5, "Token": "LLAMA"})["Price"] == {"Kind": "quoted", "Token": "LLAMA",
                                                                                   "Max": 5}


@pytest.mark.parametrize("decl, says", [
    ({"Fields": {"n": {"type": "number"}}}, "type is"),
    ({"Fields": {"N": {"type": "integer"}}}, "field name"),
    ({"Fields": {"n": {"type": "integer", "minLength": 1}}}, "string keywords"),
    ({"Fields": {"s": {"type": "string", "minimum": 1}}}, "minLength and maxLength"),
    ({"Fields": {"s": {"type": "string", "minLength": 5, "maxLength": 2}}}, "above maxLength"),
    ({"Fields": {"s": {"type": "string", "maxLength": 0}}}, "maxLength"),
    ({"Fields": {"e": {"type": "string", "enum": []}}}, "enum is"),
    ({"Fields": {"e": {"type": "string", "enum": ["x", "x"]}}}, "different"),
    ({"Fields": {"e": {"type": "string", "enum": ["x"], "maxLength": 3}}}, "no length"),
    ({"Fields": {"n": {"type": "integer", "default": 2.5}}}, "default"),
    ({"Fields": {"n": {"type": "integer", "minimum": 1, "maximum": 3, "default": 4}}}, "default"),
    ({"Fields": {"n": {"type": "integer", "minimum": True}}}, "minimum"),
    ({"Fields": {f"f{i}": {"type": "integer"} for i in range(9)}}, "up to 8"),
    ({"Price": {"Kind": "auction"}}, "Kind is"),
    ({"Price": {"Kind": "fixed", "Amount": 0}}, "Amount"),
    ({"Price": {"Kind": "fixed", "Amount": 10**30}}, "Amount"),
    ({"Price": {"Kind": "fixed", "Max": 5}}, "takes Kind, Token and Amount"),
    ({"Price": {"Kind": "none", "Amount": 1}}, "free action"),
    ({"Title": ""}, "Title"),
    ({"Description": "x" * 201}, "Description"),
    ({"Color": "red"}, "unknown key"),
])
def test_a_bad_declaration_is_refused_naming_the_part(decl, says):
    with pytest.raises(FormError) as no:
        one(**decl)
    assert says in str(no.value)


def test_a_declaration_list_has_one_to_eight_differently_named_actions():
    for actions in ([], [{"Name": f"a{i}"} for i in range(9)], [{"Name": "a"}, {"Name": "a"}], "a", [{"Name": "1a"}]):
        with pytest.raises(FormError):
            check_declarations(actions)


def test_fields_are_checked_against_the_declaration():
    d = one(Fields={"w": {"type": "string", "minLength": 1, "maxLength": 5}, "n": {"type": "integer", "minimum": 1,
                                                                                  "maximum": 3, "default": 1},
                    "e": {"type": "string", "enum": ["x", "y"]}})
    assert check_fields(d, {"w": "  a   b ", "e": "y"}) == {"w": "a b", "n": 1, "e": "y"}
    for fields, says in [({"e": "x"}, "w is required"), ({"w": "", "e": "x"}, "1-5"),
                         ({"w": "abcdef", "e": "x"}, "1-5"), ({"w": "a", "e": "z"}, "one of x, y"),
                         ({"w": "a", "e": "x", "n": 0}, "from 1 to 3"), ({"w": "a", "e": "x", "n": True}, "whole"),
                         ({"w": 5, "e": "x"}, "is a string"), ({"w": "a", "e": "x", "q": 1}, "no field 'q'"),
                         ([1], "is a map")]:
        with pytest.raises(FormError) as no:
            check_fields(d, fields)
        assert says in str(no.value), fields


def test_the_sdk_turns_decorated_methods_into_declarations_in_the_order_written():
    class Shop(Npc):
        @action(title="Buy", price=fixed("0.5"), fields={"what": Choice(["hay", "oats"]),
                                                         "note": Text(max_length=10, default="")})
        async def buy(self, request, what, note):
            return "ok"

        @action(price=quoted(3, "LLAMA"), fields={"n": Number(1, 4)})
        async def bulk(self, request, n):
            return "ok"

        def quote_bulk(self, request, n):
            return n * UNIT

    decls = Shop.declarations()
    assert [d["Name"] for d in decls] == ["buy", "bulk"]
    assert decls[0]["Price"] == {"Kind": "fixed", "Token": "wAR", "Amount": UNIT // 2}
    assert decls[1]["Price"] == {"Kind": "quoted", "Token": "LLAMA", "Max": 3 * UNIT}
    assert decls[1]["Title"] == "Bulk" and decls[1]["Fields"]["n"]["maximum"] == 4

    class Broken(Npc):
        @action(fields={"n": Number(5, 1)})
        async def oops(self, request, n):
            return ""

    with pytest.raises(FormError):
        Broken.declarations()
