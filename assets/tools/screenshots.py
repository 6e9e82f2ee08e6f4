"""Take the screenshots in docs/ with the real client: a server (with the default model), a few bots in the
plaza, and a player who chats, walks to the King and petitions.

    .venv/bin/python assets/tools/screenshots.py      # writes docs/screenshot-plaza.png and docs/screenshot-king.png
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    if not os.environ.get("DISPLAY"):
        xvfb = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        os.environ["DISPLAY"] = f":{xvfb.stdout.readline().strip()}"
    import arcade

    from client.app import GameWindow
    from client.driver import press, pump, screenshot, type_text
    from client.net import GameClient
    from npcs.wander import find_path

    tmp = Path(tempfile.mkdtemp())
    port = 8931
    url = f"ws://127.0.0.1:{port}/"
    server = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--db", f"sqlite:///{tmp / 's.db'}",
                               "--port", str(port), "--scrypt-n", "256"], cwd=ROOT)
    time.sleep(8)
    loop = asyncio.new_event_loop()
    friends = []
    for name, line in (("maple", "Has anyone seen the King today?"), ("juniper", "The fountain is lovely"),
                       ("rowan", "Dolly, what's new?")):
        c = loop.run_until_complete(GameClient.connect(url))
        loop.run_until_complete(c.register(name, "pw-secret"))
        for d in ("W", "S", "E", "S")[: len(friends) + 2]:
            loop.run_until_complete(c.move(d))
            time.sleep(0.11)
        friends.append((c, line))
    window = GameWindow(url)
    login = window.current_view
    login.name_input.text, login.password_input.text = "alice", "pw-secret"
    login.submit(register=True)
    pump(window, 10, until=lambda: type(window.current_view).__name__ == "PlayView")
    play = window.current_view
    pump(window, 2)
    for c, line in friends:
        loop.run_until_complete(c.chat(line))
        pump(window, 0.3)
    press(window, arcade.key.ENTER)
    type_text(window, "Hello everyone! Off to petition the King.\r")
    pump(window, 1.5)
    screenshot(window, ROOT / "docs" / "screenshot-plaza.png")

    def walk_to(tile):
        room = play.scene.room
        play.path = find_path(room.walkable, play.my_tile, tile, (0, 0, room.width, room.height))
        pump(window, 30, until=lambda: not play.path and play.pending_moves == 0)

    walk_to((19, 0))
    pump(window, 3, until=lambda: play.scene.name == "fed-hall")
    walk_to((12, 8))
    press(window, arcade.key.E)
    play.panel.text.text = "Please build a reading room in the hall for young llamas."
    play.panel.petition()
    pump(window, 60, until=lambda: "Payout" in play.panel.out.text)
    pump(window, 8, until=lambda: any(c.get("Npc") == "king" and "weigh" not in c["Text"] and "moment" not in c["Text"]
                                      and "votes" not in c["Text"] for c in play.chat[-2:]))
    pump(window, 0.5)
    screenshot(window, ROOT / "docs" / "screenshot-king.png")
    window.net.stop()
    window.close()
    for c, _ in friends:
        loop.run_until_complete(c.close())
    server.terminate()
    server.wait()
    print("wrote docs/screenshot-plaza.png and docs/screenshot-king.png")


if __name__ == "__main__":
    main()
