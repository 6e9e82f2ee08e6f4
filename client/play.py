"""The game screen: the room, your llama, the others, chat, wallet, connection status, and NPC panels.

Keys: arrows / WASD walk (one tile per step, predicted at once and corrected by the server), click a tile to walk
there, Enter to chat ("/n text" near, "/w name text" whisper, "/citizen CODE" to become a citizen of a world
whose citizens are invited, "/citizen" to apply where the operator approves them), E to talk to the NPC in reach,
Esc to close a panel. Everything from the server arrives through NetThread's queue and is handled here, in the window's thread.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import arcade
from arcade.gui import UIManager

from server.core.units import UNIT
from server.world import grid

from client import crowd
from client.chatbox import ChatBox
from client.netthread import NetThread
from client.npc_form import open_panel
from client.room_scene import TILE, RoomScene
from client.world_view import WorldView

KEYS = {arcade.key.UP: "N", arcade.key.W: "N", arcade.key.DOWN: "S", arcade.key.S: "S",
        arcade.key.RIGHT: "E", arcade.key.D: "E", arcade.key.LEFT: "W", arcade.key.A: "W"}
CHAT_LINES = 9
CHAT_CHARS = 68  # characters per chat panel line at 11 pt in its 470 pixels
STATUS_COLORS = {"online": arcade.color.GREEN, "reconnecting": arcade.color.ORANGE, "connecting": arcade.color.ORANGE,
                 "offline": arcade.color.RED}


def amount(value: int | None) -> str:
    return "…" if value is None else f"{value / UNIT:,.2f}"


class PlayView(arcade.View):
    def __init__(self, net: NetThread, world_root: Path, name: str):
        super().__init__()
        self.net, self.world_root, self.name = net, world_root, name
        self.model = WorldView()
        self.scene: RoomScene | None = None
        self.my_tile = (0, 0)
        self.pending_moves = 0
        self.path: list[tuple[int, int]] = []
        self.held: list[str] = []
        self.next_step = 0.0
        self.chat: list[dict[str, Any]] = []
        self.chat_scroll = 0
        self.wallet: dict[str, int | None] = {"wAR": None, "LLAMA": None}
        self.status, self.toast, self.toast_until = net.status, "", 0.0
        self.camera = arcade.camera.Camera2D()
        self.hud_camera = arcade.camera.Camera2D()
        self.ui = UIManager()  # NPC panels only: drawn while one is open
        self.chat_input = ChatBox(self.send_chat)
        self.panel = None
        self.frames: list[float] = []
        self.texts = hud_texts()
        self.dirty, self.synced_tile = True, (-1, -1)
        self.show_fps = False
        self.citizenship: dict[str, Any] = {"Citizen": True}  # until the server says otherwise
        self.net.request("Balance", tag="balance")
        self.net.request("Citizenship", tag="citizenship")

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def on_show_view(self) -> None:
        self.window.background_color = (20, 24, 32)
        self.ui.enable()

    def on_hide_view(self) -> None:
        self.ui.disable()

    @property
    def fps(self) -> float:
        recent = [t for t in self.frames if t > time.perf_counter() - 2.0]
        return (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 else 0.0

    def on_update(self, delta_time: float) -> None:
        for _ in range(2000):  # bounded: a flood of events cannot freeze a frame
            if self.net.events.empty():
                break
            self.handle(self.net.events.get())
        self.walk()
        if self.scene is not None:
            if self.dirty or self.my_tile != self.synced_tile:  # only when a tick, a view or a step changed something
                self.scene.sync(self.model, self.model.me, self.my_tile)
                self.dirty, self.synced_tile = False, self.my_tile
            self.scene.update(delta_time)
            me = self.scene.llamas.get(self.model.me)
            if me is not None:
                self.camera.position = follow(me.sprite.position, (self.scene.width * TILE, self.scene.height * TILE),
                                              (self.window.width, self.window.height))

    # --- what the server says ----------------------------------------------------------------------------------

    def handle(self, ev: dict[str, Any]) -> None:
        kind = ev.get("Action")
        if kind == "_Status":
            self.status = ev["Status"]
            if ev["Status"] == "online":
                self.net.request("Balance", tag="balance")
            return
        if kind == "_Reply":
            self.on_reply(ev["Tag"], ev["Reply"])
            return
        self.model.apply(ev)
        self.dirty = self.dirty or kind in ("Tick", "View", "RoomJoined")
        if kind == "RoomJoined":
            self.scene = RoomScene(self.world_root, ev)
            self.my_tile, self.path, self.pending_moves = (ev["X"], ev["Y"]), [], 0
            self.chat.append({"From": "", "Text": f"— {ev['Room']} —", "Scope": "system"})
            self.chat.extend(self.model.chat[-CHAT_LINES:])
            self.close_panel()
        elif kind in ("Tick", "View") and self.pending_moves == 0 and not self.path:
            self.my_tile = (self.model.x, self.model.y)  # the server's word, once no step of ours is in flight
        elif kind in ("ChatLine", "Whisper"):
            self.chat.append(ev if kind == "ChatLine" else {**ev, "Scope": "whisper"})
            self.speak(ev)
        elif kind in ("Credit-Notice", "Debit-Notice"):
            self.wallet[ev["Token"]] = ev["Balance"]
            if ev.get("Reason") == "allowance" and not self.citizenship.get("Citizen"):  # approved meanwhile
                self.net.request("Citizenship", tag="citizenship")
        elif kind == "NpcThinking":
            self.thinking(ev["Npc"], "thinking…" + (f" ({ev['Position']} in line)" if ev.get("Position") else ""))
        elif kind == "NpcJoined" and self.scene is not None and ev["Room"] == self.scene.name:
            self.scene.npc_joined(ev["Npc"])
            if self.panel is not None and self.panel.npc["Id"] == ev["Npc"]["Id"]:  # new actions: a new form
                self.panel.close()
                self.panel = open_panel(self, ev["Npc"])
        elif kind == "NpcLeft" and self.scene is not None and ev["Room"] == self.scene.name:
            self.scene.npc_left(ev["Npc"])
            if self.panel is not None and self.panel.npc["Id"] == ev["Npc"]:
                self.close_panel()
                self.notify("That NPC has left.")
        elif kind in ("NpcDone", "NpcFailed", "NpcAnswer", "Granted", "PetitionFailed"):
            self.thinking(ev.get("Npc") or self.king_id(), "")
        elif kind == "Error":
            self.notify(f"{ev.get('Code')}: {ev.get('Message')}")
        if self.panel is not None:
            self.panel.on_event(ev)

    def on_reply(self, tag: str, reply: dict[str, Any]) -> None:
        if tag == "move":
            self.pending_moves = max(0, self.pending_moves - 1)
            if reply.get("Action") == "Error":
                if "X" in reply:  # refused: the server says where we really are
                    self.my_tile, self.path = (reply["X"], reply["Y"]), []
                if reply.get("Code") not in ("MOVE_TOO_FAST",):
                    self.notify(reply.get("Message", ""))
        elif tag == "balance" and reply.get("Action") != "Error":
            self.wallet.update(reply["Balances"])
        elif tag == "chat" and reply.get("Action") == "Error":
            self.notify(reply.get("Message", ""))
        elif tag in ("citizenship", "citizen"):
            self.on_citizenship(tag, reply)
        elif self.panel is not None:
            self.panel.on_reply(tag, reply)

    def on_citizenship(self, tag: str, reply: dict[str, Any]) -> None:
        if reply.get("Action") == "Error":
            if tag == "citizen":  # the server's reason, as a sentence
                message = str(reply.get("Message") or reply.get("Code"))
                self.system(message[:1].upper() + message[1:] + ".")
            return
        self.citizenship = reply
        if tag == "citizen":
            self.system("You are a citizen of this world now: your starting allowance follows." if reply["Citizen"]
                        else "Applied: you become a citizen once the world's operator approves you.")

    def system(self, text: str) -> None:
        self.chat.append({"From": "", "Text": text, "Scope": "system"})

    def citizen_hint(self) -> str:
        c = self.citizenship
        if c.get("Citizen"):
            return ""
        if c.get("Pending"):
            return "   ·  not a citizen yet: waiting for the operator's approval"
        return "   ·  not a citizen: /citizen CODE" if c.get("Mode") == "invite" else "   ·  not a citizen: /citizen"

    def speak(self, ev: dict[str, Any]) -> None:
        if self.scene is None:
            return
        who = self.scene.by_npc(ev["Npc"]) if ev.get("Npc") else self.scene.by_name(ev.get("From", ""))
        if who is not None and ev.get("Action") == "ChatLine":
            self.scene.say(who.eid, ev["Text"])

    def thinking(self, npc_id: str | None, text: str) -> None:
        who = self.scene.by_npc(npc_id) if (self.scene and npc_id) else None
        if who is not None:
            who.think(text)

    def king_id(self) -> str | None:
        if self.scene is None:
            return None
        return next((n["Id"] for n in self.scene.npcs.values() if n["Kind"] == "king"), None)

    def notify(self, text: str) -> None:
        if text:
            self.toast, self.toast_until = text, time.monotonic() + 4

    # --- walking -----------------------------------------------------------------------------------------------

    def typing(self) -> bool:
        return self.chat_input.active or (self.panel is not None and self.panel.typing())

    def walk(self) -> None:
        if self.scene is None or time.monotonic() < self.next_step:
            return
        direction = None
        if self.held and not self.typing():
            direction = self.held[-1]
            self.path = []
        elif self.path:
            nxt = self.path.pop(0)
            direction = grid.direction(self.my_tile, nxt)
        if direction is None:
            return
        dx, dy = grid.STEPS[direction]
        target = (self.my_tile[0] + dx, self.my_tile[1] + dy)
        if not self.scene.room.walkable(*target):
            self.path = []
            return
        self.my_tile = target  # predicted; the reply confirms or corrects it
        self.pending_moves += 1
        self.next_step = time.monotonic() + 1.0 / self.scene.speed
        self.net.request("Move", tag="move", Dir=direction)

    def on_text(self, text: str) -> None:
        self.chat_input.on_text(text)

    def on_key_press(self, symbol: int, modifiers: int) -> None:
        if self.chat_input.on_key_press(symbol):
            return
        if symbol == arcade.key.ESCAPE:
            self.close_panel()
            return
        if self.typing():
            return
        if symbol in KEYS and KEYS[symbol] not in self.held:
            self.held.append(KEYS[symbol])
        elif symbol in (arcade.key.ENTER, arcade.key.RETURN, arcade.key.NUM_ENTER, arcade.key.T):
            self.chat_input.activate(swallow="t" if symbol == arcade.key.T else "\r")
            self.held.clear()
        elif symbol == arcade.key.E:
            self.talk()
        elif symbol == arcade.key.F3:
            self.show_fps = not self.show_fps

    def on_key_release(self, symbol: int, modifiers: int) -> None:
        if symbol in KEYS and KEYS[symbol] in self.held:
            self.held.remove(KEYS[symbol])

    def on_mouse_press(self, x: int, y: int, button: int, modifiers: int) -> None:
        if self.scene is None or button != arcade.MOUSE_BUTTON_LEFT or self.typing() or self.panel is not None:
            return
        wx, wy, *_ = self.camera.unproject((x, y))
        goal = self.scene.tile_at(wx, wy)
        room = self.scene.room
        path = grid.find_path(lambda tx, ty: room.walkable(tx, ty), self.my_tile, goal, (0, 0, room.width, room.height))
        self.path = path or []

    def on_mouse_scroll(self, x: int, y: int, scroll_x: float, scroll_y: float) -> None:
        if x < 480 and y < 260:
            self.chat_scroll = max(0, min(len(self.chat) - CHAT_LINES, self.chat_scroll + int(scroll_y)))

    # --- chat and NPCs -----------------------------------------------------------------------------------------

    def send_chat(self, text: str) -> None:
        self.chat_input.deactivate()
        if text == "/citizen" or text.startswith("/citizen "):
            code = text[len("/citizen"):].strip()
            self.net.request("BecomeCitizen", tag="citizen", **({"Invite": code} if code else {}))
            return
        if text.startswith("/w "):
            parts = text.split(" ", 2)
            if len(parts) == 3:
                self.net.request("Whisper", tag="chat", To=parts[1], Text=parts[2])
                self.chat.append({"From": f"you → {parts[1]}", "Text": parts[2], "Scope": "whisper"})
            return
        scope = "near" if text.startswith("/n ") else "room"
        self.net.request("Chat", tag="chat", Text=text[3:] if scope == "near" else text, Scope=scope)

    def npc_in_reach(self) -> dict[str, Any] | None:
        if self.scene is None:
            return None
        best = None
        for llama in self.scene.npc_llamas():
            tx, ty = self.scene.tile_at(*llama.sprite.position)
            d2 = (tx - self.my_tile[0]) ** 2 + (ty - self.my_tile[1]) ** 2
            if d2 <= llama.npc["Reach"] ** 2 and (best is None or d2 < best[0]):
                best = (d2, llama.npc)
        return best[1] if best else None

    def talk(self) -> None:
        npc = self.npc_in_reach()
        if npc is None:
            self.notify("Nobody to talk to here: walk up to an NPC (their names are yellow).")
            return
        self.close_panel()
        self.panel = open_panel(self, npc)

    def close_panel(self) -> None:
        if self.panel is not None:
            self.panel.close()
            self.panel = None

    # --- drawing -----------------------------------------------------------------------------------------------

    def on_draw(self) -> None:
        self.frames = [t for t in self.frames if t > time.perf_counter() - 2.0] + [time.perf_counter()]
        self.clear()
        if self.scene is not None:
            self.camera.use()
            self.scene.draw()
        self.hud_camera.use()
        self.draw_hud()
        self.chat_input.draw()
        if self.panel is not None:
            self.ui.draw()
        self.on_draw_done()

    def on_draw_done(self) -> None:
        """A hook for whoever counts frames (bench/client_fps.py)."""

    def chat_lines(self, entry: dict[str, Any]) -> list[tuple[str, Any]]:
        """A chat entry as the panel's lines, wrapped (continuation lines indented), in the entry's colour."""
        cached = entry.get("_lines")
        if cached is None:
            who = f"{entry.get('From')}: " if entry.get("From") else ""
            color = arcade.color.YELLOW if entry.get("Npc") else {
                "near": arcade.color.LIGHT_GREEN, "whisper": arcade.color.PINK,
                "system": arcade.color.LIGHT_GRAY}.get(entry.get("Scope"), arcade.color.WHITE)
            lines = crowd.wrap(f"{who}{entry.get('Text', '')}", CHAT_CHARS)
            cached = entry["_lines"] = [(line if i == 0 else "   " + line, color) for i, line in enumerate(lines)]
        return cached

    def draw_hud(self) -> None:
        """Text objects are kept and only their strings change: arcade.draw_text lays text out anew every frame,
        which costs more than all the llamas together."""
        w, h = self.window.width, self.window.height
        t = self.texts
        arcade.draw_lbwh_rectangle_filled(0, h - 30, w, 30, (0, 0, 0, 150))
        arcade.draw_circle_filled(16, h - 15, 6, STATUS_COLORS.get(self.status, arcade.color.GRAY))
        t["status"].text = (f"{self.status}   {self.name} in {self.scene.name if self.scene else '…'}"
                            f"{self.citizen_hint()}")
        t["status"].position = (30, h - 22)
        t["wallet"].text = f"wAR {amount(self.wallet['wAR'])}    LLAMA {amount(self.wallet['LLAMA'])}"
        t["wallet"].position = (w - 16, h - 22)
        arcade.draw_lbwh_rectangle_filled(10, 46, 470, CHAT_LINES * 18 + 10, (0, 0, 0, 140))
        end = len(self.chat) - self.chat_scroll
        shown: list[tuple[str, Any]] = []  # the newest entries' wrapped lines, as many as the panel holds
        for entry in reversed(self.chat[max(0, end - CHAT_LINES):end]):
            shown[:0] = self.chat_lines(entry)
            if len(shown) >= CHAT_LINES:
                break
        shown = shown[-CHAT_LINES:]
        for i, line in enumerate(t["chat"]):
            text, color = shown[i] if i < len(shown) else ("", arcade.color.WHITE)
            if line.text != text:
                line.text = text
            line.color = color
        hint = self.npc_in_reach()
        t["hint"].text = f"Press E to talk to {hint['Name']}" if hint is not None and self.panel is None else ""
        t["hint"].position = (w / 2, 60)
        t["toast"].text = self.toast[:100] if self.toast and time.monotonic() < self.toast_until else ""
        t["toast"].position = (w / 2, h - 60)
        t["fps"].text = f"{self.fps:.0f} fps" if self.show_fps else ""
        t["fps"].position = (w - 16, h - 50)
        for text in (t["status"], t["wallet"], *t["chat"], t["hint"], t["toast"], t["fps"]):
            if text.text:
                text.draw()


def follow(me: tuple[float, float], room: tuple[float, float], screen: tuple[float, float]) -> tuple[float, float]:
    """Where the camera looks: at your llama, but never past the map's edges; a room smaller than the window
    stays centred in it."""
    return tuple(size / 2 if size <= view else min(max(at, view / 2), size - view / 2)  # type: ignore[return-value]
                 for at, size, view in zip(me, room, screen))


def hud_texts() -> dict[str, Any]:
    return {
        "status": arcade.Text("", 0, 0, arcade.color.WHITE, 12),
        "wallet": arcade.Text("", 0, 0, arcade.color.GOLD, 13, anchor_x="right", bold=True),
        "chat": [arcade.Text("", 18, 50 + (CHAT_LINES - 1 - i) * 18 + 4, arcade.color.WHITE, 11)
                 for i in range(CHAT_LINES)],
        "hint": arcade.Text("", 0, 0, arcade.color.YELLOW, 14, anchor_x="center", bold=True),
        "toast": arcade.Text("", 0, 0, arcade.color.LIGHT_CORAL, 13, anchor_x="center"),
        "fps": arcade.Text("", 0, 0, arcade.color.LIGHT_GRAY, 10, anchor_x="right"),
    }
