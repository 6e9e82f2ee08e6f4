"""The chat line at the bottom of the screen: a plain text box drawn with one rectangle and one Text.

Not an arcade.gui widget on purpose: a UIManager draws its whole window-sized surface every frame, which on a
software renderer costs a third of the frame rate; the panels (which need buttons) use it only while open.
"""

from __future__ import annotations

from typing import Callable

import arcade

MAX = 280


class ChatBox:
    def __init__(self, on_submit: Callable[[str], None], x: float = 10, y: float = 10, width: float = 460):
        self.on_submit = on_submit
        self.x, self.y, self.width = x, y, width
        self.active = False
        self.swallow = ""
        self.value = ""
        self.text = arcade.Text("", x + 8, y + 8, arcade.color.WHITE, 12)
        self.hint = arcade.Text("Enter to chat  ·  /n near  ·  /w name whisper", x + 8, y + 8,
                                arcade.color.GRAY, 11)

    def activate(self, swallow: str = "") -> None:
        """Open the line. `swallow`: the text the key that opened it is about to type. The window system delivers
        a key's text event after its key press (Enter types "\r", T types "t"), so without this the Enter that
        opens the line would at once submit it empty and close it again, and what the player typed next would
        walk the llama."""
        self.active = True
        self.swallow = swallow

    def key_pressed(self) -> None:
        """Any later key press: the opening key's text event, if it was going to come, has come."""
        self.swallow = ""

    def deactivate(self) -> None:
        self.active = False

    def on_text(self, text: str) -> bool:
        """Typed text while active; Enter (\\r) submits. True if the box took it."""
        if not self.active:
            return False
        if self.swallow and text == self.swallow:
            self.swallow = ""
            return True
        self.swallow = ""
        for ch in text:
            if ch in "\r\n":
                value, self.value = self.value.strip(), ""
                self.active = False
                if value:
                    self.on_submit(value)
            elif ch.isprintable() and len(self.value) < MAX:
                self.value += ch
        return True

    def on_key_press(self, symbol: int) -> bool:
        self.key_pressed()
        if not self.active:
            return False
        if symbol == arcade.key.BACKSPACE:
            self.value = self.value[:-1]
        elif symbol == arcade.key.ESCAPE:
            self.active = False
        return True

    def draw(self) -> None:
        border = arcade.color.WHITE if self.active else arcade.color.DARK_GRAY
        arcade.draw_lbwh_rectangle_filled(self.x, self.y, self.width, 30, (0, 0, 0, 170))
        arcade.draw_lbwh_rectangle_outline(self.x, self.y, self.width, 30, border, 2)
        if self.active or self.value:
            shown = self.value[-60:] + ("▏" if self.active else "")
            if self.text.text != shown:
                self.text.text = shown
            self.text.draw()
        else:
            self.hint.draw()
