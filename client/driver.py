"""Driving the real client window without a person: frames pumped by hand, keys and text typed as events, and
screenshots. The client tests and the fps benchmark use it; it needs a display (Xvfb in tests)."""

from __future__ import annotations

import time
from typing import Callable

import arcade
import pyglet

from client.app import GameWindow


def pump(window: GameWindow, seconds: float = 0.2, until: Callable[[], bool] | None = None) -> bool:
    """Run the window's loop for a while (or until a condition holds); True if the condition was met."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        window.switch_to()
        window.dispatch_events()
        pyglet.clock.tick()  # arcade's scheduled frame: on_update, then on_draw and flip at the draw rate
        if until is not None and until():
            return True
        time.sleep(0.002)
    return until is None


def type_text(window: GameWindow, text: str) -> None:
    for ch in text:
        window.dispatch_event("on_text", ch)
    pump(window, 0.05)


def press(window: GameWindow, symbol: int, hold: float = 0.0) -> None:
    window.dispatch_event("on_key_press", symbol, 0)
    pump(window, hold or 0.02)
    window.dispatch_event("on_key_release", symbol, 0)
    pump(window, 0.02)


def click(window: GameWindow, x: float, y: float) -> None:
    window.dispatch_event("on_mouse_press", int(x), int(y), arcade.MOUSE_BUTTON_LEFT, 0)
    window.dispatch_event("on_mouse_release", int(x), int(y), arcade.MOUSE_BUTTON_LEFT, 0)
    pump(window, 0.05)


def screenshot(window: GameWindow, path) -> "object":
    window.switch_to()
    window.dispatch_event("on_draw")
    image = arcade.get_image(0, 0, window.width, window.height)
    if path is not None:
        image.save(path)
    return image
