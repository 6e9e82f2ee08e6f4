"""`llama-land play`: the desktop client. A 1280×720 window, the login screen, then the game."""

from __future__ import annotations

from pathlib import Path

import arcade

from client.login import LoginView
from client.netthread import NetThread

DEFAULT_WORLD = Path(__file__).resolve().parents[1] / "worlds" / "llama-land"


class GameWindow(arcade.Window):
    def __init__(self, url: str, world_root: Path = DEFAULT_WORLD, name: str = "", width: int = 1280,
                 height: int = 720, version: int | None = None):
        super().__init__(width, height, "Llama Land", resizable=True, update_rate=1 / 60, draw_rate=1 / 60)
        self.net = NetThread(url, version).start()
        self.show_view(LoginView(self.net, world_root, name))

    def on_close(self) -> None:
        self.net.stop()
        super().on_close()


def play(url: str, name: str = "", world: Path | None = None) -> None:
    GameWindow(url, world or DEFAULT_WORLD, name)
    arcade.run()
