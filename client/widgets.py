"""Small arcade.gui pieces the client shares: a one-line input that submits on Enter, and a panel frame."""

from __future__ import annotations

from typing import Callable

import arcade
from arcade.gui import UIAnchorLayout, UIBoxLayout, UIEvent, UIInputText, UILabel, UITextArea, UITextInputEvent
from arcade.gui.events import UIOnChangeEvent  # noqa: F401  (re-exported for callers that listen for changes)

EVENT_HANDLED = True


class SubmitInput(UIInputText):
    """UIInputText inserts a newline on Enter; here Enter submits (docs/architecture.md, principle 6, text entry
    owns the keyboard): this one calls on_submit with the text and clears it."""

    def __init__(self, on_submit: Callable[[str], None], clear: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.on_submit, self.clear = on_submit, clear

    def on_event(self, event: UIEvent) -> bool | None:
        if self.active and isinstance(event, UITextInputEvent) and event.text in ("\r", "\n"):
            text = self.text.strip()
            if self.clear:
                self.text = ""
            if text:
                self.on_submit(text)
            return EVENT_HANDLED
        return super().on_event(event)


class SecretInput(SubmitInput):
    """A password field: one "*" per character on screen, the real text in `text` (the way arcade's experimental
    UIPasswordInput draws, but submitting on Enter like the other fields). The document is swapped only for the
    drawing, without the change events that setting `text` would send."""

    def do_render(self, surface) -> None:
        layout, caret = self.layout, self.caret
        real, position = self.doc.text, caret.position
        layout.begin_update()
        self.doc.text = "*" * len(real)
        layout.end_update()
        caret.position = position
        super().do_render(surface)
        layout.begin_update()
        self.doc.text = real
        layout.end_update()
        caret.position = position


def label(text: str, size: int = 12, width: int | None = None, height: int | None = None,
          color=arcade.color.WHITE, bold: bool = False) -> UILabel | UITextArea:
    """A one-line label that fits its text, or (given a width) a fixed-size block that wraps: a multiline UILabel
    would shrink to its first text and wrap everything after it in that narrow column."""
    if width:  # an opaque background: without one, new text is drawn over the old
        area = UITextArea(text=text, width=width, height=height or 40, font_size=size, text_color=color, bold=bold)
        return area.with_background(color=(20, 24, 40, 255))
    return UILabel(text=text, font_size=size, text_color=color, bold=bold)


def panel(children: list, anchor_x: str = "center", align_x: float = 0) -> tuple[UIAnchorLayout, UIBoxLayout]:
    box = UIBoxLayout(vertical=True, space_between=8)
    for child in children:
        box.add(child)
    framed = box.with_padding(all=14).with_background(color=(20, 24, 40, 255))
    anchor = UIAnchorLayout()
    anchor.add(framed, anchor_x=anchor_x, anchor_y="center", align_x=align_x)
    return anchor, box


def row(*children, space: int = 8) -> UIBoxLayout:
    """Widgets side by side (a form's fields, a pair of buttons)."""
    box = UIBoxLayout(vertical=False, space_between=space)
    for child in children:
        box.add(child)
    return box
