"""The panel of an NPC an outside program plays: a form built from the actions it declared (docs/protocol.md,
NPC programs), so a new NPC needs no change here.

Each declared action is a button (its title and price) under its fields — a text box per field, labelled with
its title and limits, filled with its default. A press checks the fields with the server's own rules
(server/core/forms.py) before anything is sent, then sends `Use` with `MaxPrice` at the declared price (a quoted
action asks its price first, shows it, and buys on the second press); the answer (`NpcAnswer`), a refusal
(`NpcFailed`, refunded) and the NPC's whispers show below.
"""

from __future__ import annotations

from typing import Any

import arcade

from server.core.forms import FormError, check_fields
from server.core.units import show

from client.panels import PANELS, NpcPanel, PanelHost
from client.widgets import SubmitInput, label


def price_text(price: dict[str, Any]) -> str:
    if price["Kind"] == "fixed":
        return f"{show(price['Amount'])} {price['Token']}"
    if price["Kind"] == "quoted":
        return f"priced on asking, up to {show(price['Max'])} {price['Token']}"
    return "free"


def field_hint(name: str, schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return f"{schema['title']} ({' / '.join(schema['enum'])}):"
    if schema["type"] == "integer":
        return f"{schema['title']} ({schema['minimum']}-{schema['maximum']}):"
    return f"{schema['title']} (up to {schema['maxLength']} characters):"


class FormPanel(NpcPanel):
    info_height, out_height = 40, 120

    def build(self) -> list:
        self.actions = {a["Name"]: a for a in self.npc.get("Actions", [])}
        self.boxes: dict[str, dict[str, SubmitInput]] = {}
        self.quoted: dict[str, int] = {}  # action -> the price the program named, for the second press
        self.info.text = f"{self.npc['Name']} is an NPC another program plays. What it offers:"
        out: list = []
        for name, decl in self.actions.items():
            boxes = {}
            for field, schema in decl["Fields"].items():
                box = self.field(lambda _, n=name: self.use(n))
                default = schema.get("default", schema["enum"][0] if "enum" in schema else
                                     schema.get("minimum", "") if schema["type"] == "integer" else "")
                box.text = str(default)
                boxes[field] = box
                out += [label(field_hint(field, schema), 11), box]
            self.boxes[name] = boxes
            out.append(self.button(f"{decl['Title']} · {price_text(decl['Price'])}", lambda n=name: self.use(n),
                                   width=380))
            if decl["Description"]:
                lines = -(-len(decl["Description"]) // 58)  # about 58 characters a line at this size
                out.append(label(decl["Description"], 10, width=380, height=15 * lines + 4,
                                 color=arcade.color.LIGHT_GRAY))
        if not self.actions:
            self.show(f"{self.npc['Name']} offers nothing right now.")
        return out

    def values(self, name: str) -> dict[str, Any]:
        """The typed fields as the declaration wants them (numbers as integers), checked as the server will."""
        decl, typed = self.actions[name], {}
        for field, box in self.boxes[name].items():
            text, schema = box.text.strip(), decl["Fields"][field]
            if schema["type"] == "integer":
                try:
                    typed[field] = int(text)
                except ValueError:
                    raise FormError(f"{schema['title']} is a whole number") from None
            else:
                typed[field] = text
        return check_fields(decl, typed)

    def use(self, name: str) -> None:
        decl = self.actions[name]
        try:
            fields = self.values(name)
        except FormError as exc:
            self.show(str(exc))
            return
        price = decl["Price"]
        if price["Kind"] == "quoted" and name not in self.quoted:
            self.show("Asking the price…")
            self.net.request("AskPrice", tag=f"price:{name}", Npc=self.npc["Id"], Name=name, Fields=fields)
            return
        most = self.quoted.pop(name, price.get("Amount", 0))
        self.show(f"{decl['Title']}: sent…")
        self.net.request("Use", tag=f"use:{name}", Npc=self.npc["Id"], Name=name, Fields=fields, MaxPrice=most)

    def on_reply(self, tag: str, reply: dict[str, Any]) -> None:
        if reply.get("Action") == "Error":
            return super().on_reply(tag, reply)
        kind, _, name = tag.partition(":")
        if kind == "price":
            self.quoted[name] = reply["Price"]
            self.show(f"{self.actions[name]['Title']} costs {show(reply['Price'])} {reply['Token']} now: press again "
                      f"to buy.")
        elif kind == "use":
            paid = f"{show(reply['Price'])} {reply['Token']} held; " if reply.get("Price") else ""
            self.show(f"{paid}{self.npc['Name']} is on it…")

    def on_event(self, ev: dict[str, Any]) -> None:
        if ev.get("Npc") != self.npc["Id"]:
            return
        if ev["Action"] == "NpcAnswer":
            paid = f" (paid {show(ev['Paid'])} {ev['Token']})" if ev.get("Paid") else ""
            self.show((ev["Text"] or "done") + paid)
        elif ev["Action"] == "NpcFailed":
            back = f"; {show(ev['Refunded'])} back" if ev.get("Refunded") else ""
            self.show(f"{ev['Message']} ({ev['Code']}{back})")
        elif ev["Action"] == "Whisper":
            self.show(f"{self.out.text}\n{ev['From']} whispers: {ev['Text']}")


def open_panel(play: PanelHost, npc: dict[str, Any]) -> NpcPanel:
    """The built-in kinds' own panels (client/panels.py); any NPC that declares its actions gets the form."""
    if npc.get("Actions") is not None:
        return FormPanel(play, npc)
    return PANELS.get(npc["Kind"], PANELS["wanderer"])(play, npc)
