"""The first screen: log in or register, with the server's refusal in plain words."""

from __future__ import annotations

from pathlib import Path

import arcade
from arcade.gui import UIFlatButton, UIManager

from client.netthread import NetThread
from client.widgets import SecretInput, SubmitInput, label, panel

MESSAGES = {
    "BAD_CREDENTIALS": "Wrong name or password.",
    "NAME_TAKEN": "That name is taken: choose another, or log in.",
    "BAD_NAME": "A name is 3-20 letters, digits, _ or -, starting with a letter (and not an NPC's).",
    "WEAK_PASSWORD": "A password needs at least 6 characters.",
    "UNREACHABLE": "Cannot reach the server at {url}. Is it running?",
    "VERSION_MISMATCH": "The server speaks another protocol version: {message}. Update your client.",
    "BAD_INVITE": "That invite code is unknown or used already: ask the world's operator for one.",
    "TOO_MANY_ACCOUNTS": "Too many new accounts from your address this hour: try again later, or log in.",
}


class LoginView(arcade.View):
    def __init__(self, net: NetThread, world_root: Path, name: str = ""):
        super().__init__()
        self.net, self.world_root = net, world_root
        self.ui = UIManager()
        self.name_input = SubmitInput(lambda _: self.password_input.activate(), clear=False, width=320, height=32,
                                      text=name, font_size=14)
        self.password_input = SecretInput(lambda _: self.submit(register=False), clear=False, width=320, height=32,
                                          font_size=14)
        self.invite_input = SubmitInput(lambda _: self.submit(register=True), clear=False, width=320, height=32,
                                        font_size=14)
        login, register = UIFlatButton(text="Log in", width=150), UIFlatButton(text="Register", width=150)
        login.on_click = lambda _: self.submit(register=False)
        register.on_click = lambda _: self.submit(register=True)
        self.message = label(" ", 12, width=320, height=60, color=arcade.color.LIGHT_CORAL)
        anchor, _ = panel([label("Llama Land", 28, bold=True), label(f"server: {net.url}", 10,
                                                                       color=arcade.color.LIGHT_GRAY),
                           label("Name", 12), self.name_input, label("Password", 12), self.password_input,
                           label("Invite code (to register, if this world asks for one)", 10,
                                 color=arcade.color.LIGHT_GRAY), self.invite_input,
                           login, register, self.message])
        self.ui.add(anchor)
        self.pending = None
        self.error = ""

    def on_show_view(self) -> None:
        self.window.background_color = (34, 92, 58)
        self.ui.enable()
        self.name_input.activate()

    def on_hide_view(self) -> None:
        self.ui.disable()

    def submit(self, register: bool) -> None:
        if self.pending is not None:
            return
        self.show("Connecting…", error=False)
        self.pending = self.net.login(self.name_input.text.strip(), self.password_input.text, register=register,
                                      invite=self.invite_input.text.strip() or None)

    def show(self, text: str, error: bool = True) -> None:
        self.error = text if error else ""
        self.message.text = text
        # (one colour: a text area keeps its font; "Connecting…" reads fine in it too)

    def on_update(self, delta_time: float) -> None:
        while not self.net.events.empty():  # status changes while logging in; the play view takes the rest
            ev = self.net.events.get()
            if ev.get("Action") != "_Status":
                self.net.events.queue.appendleft(ev)
                break
        if self.pending is None or not self.pending.done():
            return
        result, self.pending = self.pending.result(), None
        if result["Ok"]:
            from client.play import PlayView

            self.window.show_view(PlayView(self.net, self.world_root, result["Name"]))
            return
        template = MESSAGES.get(result["Code"], "{code}: {message}")
        self.show(template.format(url=self.net.url, code=result["Code"], message=result.get("Message", "")))

    def on_draw(self) -> None:
        self.clear()
        self.ui.draw()
