"""The client under real input: a real Arcade window on Xvfb, typed into and clicked through X input events
(xdotool), so the window system's event order (a key press, then its text) is part of what is tested. A real
server with the real model, and a headless client who listens."""

import asyncio
import subprocess
import tomllib

import numpy as np

from client.net import GameClient

from conftest import ServerProcess
from court import DEFAULT_WORLD

DOLLY = tomllib.loads((DEFAULT_WORLD / "npcs" / "dolly.toml").read_text())
SENTENCE = "Dolly, what is the best thing about the plaza? I walk west, then east; tea at dawn, dear!"


class Person:
    """Keyboard and mouse of someone sitting at the window: xdotool events, then the window's loop runs."""

    def __init__(self, window):
        from client.driver import pump

        self.window, self.pump = window, pump
        self.id = str(window._window)  # the X window
        pump(window, 0.3)
        subprocess.run(["xdotool", "windowfocus", "--sync", self.id], check=True, timeout=30)
        pump(window, 0.3)

    def type(self, text: str) -> None:
        subprocess.run(["xdotool", "type", "--delay", "15", text], check=True, timeout=60)
        self.pump(self.window, 0.3)

    def key(self, name: str) -> None:
        subprocess.run(["xdotool", "key", name], check=True, timeout=30)
        self.pump(self.window, 0.3)

    def click(self, x: float, y: float) -> None:
        """At window coordinates (y up, as arcade has them)."""
        subprocess.run(["xdotool", "mousemove", "--window", self.id, str(int(x)), str(int(self.window.height - y)),
                        "click", "1"], check=True, timeout=30)
        self.pump(self.window, 0.3)


def wait(window, cond, seconds=10.0, what=""):
    from client.driver import pump

    assert pump(window, seconds, until=cond), f"timed out waiting for {what}"


def field_pixels(window, widget):
    from client.driver import pump, screenshot

    pump(window, 0.3)
    arr = np.asarray(screenshot(window, None).convert("RGB"))
    r = widget.rect
    left, bottom, width, height = int(r.left), int(r.bottom), int(r.width), int(r.height)
    return arr[window.height - bottom - height:window.height - bottom, left:left + width].copy()


def button(view, text):
    from arcade.gui import UIFlatButton

    return next(w for w in view.ui.walk_widgets() if isinstance(w, UIFlatButton) and w.text == text)


def walk_next_to(window, you, play, name: str, npc_id: str, tries: int = 8) -> None:
    """Click a tile next to the NPC called name until it is in reach (the way a player walks up to one)."""
    for _ in range(tries):
        wait(window, lambda: play.pending_moves == 0 and not play.path, 30, "settling")
        if play.npc_in_reach() and play.npc_in_reach()["Id"] == npc_id:
            return
        npc = play.scene.by_name(name)
        tx, ty = play.scene.tile_at(*npc.sprite.position)
        goal = min(((tx + dx, ty + dy) for dx in (-2, -1, 0, 1, 2) for dy in (-1, 0, 1) if dx or dy),
                   key=lambda t: (not play.scene.room.standable(*t), abs(t[0] - tx) + abs(t[1] - ty)))
        sx, sy, *_ = play.camera.project(play.scene.center(*goal))
        you.click(sx, sy)
    assert play.npc_in_reach() and play.npc_in_reach()["Id"] == npc_id, f"{name} not in reach"


def register_by_typing(window, name: str, password: str = "pw-secret", invite: str = ""):
    """At the login screen: type the name, Return, the password (and, clicked into its box, an invite code), click
    Register; (the person, the game view)."""
    you = Person(window)
    login = window.current_view
    you.type(name)
    you.key("Return")
    you.type(password)
    if invite:
        you.click(*login.invite_input.rect.center)
        you.type(invite)
    you.click(*button(login, "Register").rect.center)
    wait(window, lambda: type(window.current_view).__name__ == "PlayView", what="the game")
    return you, window.current_view


def test_a_player_types_logs_in_chats_and_petitions_with_real_input(display, tmp_path):
    from client.app import GameWindow

    server = ServerProcess(f"sqlite:///{tmp_path / 'c.db'}", None, DEFAULT_WORLD, "--inference-workers", "1",
                           "--inference-threads", "2")
    loop = asyncio.new_event_loop()
    bob = loop.run_until_complete(GameClient.connect(server.url))
    loop.run_until_complete(bob.register("bob", "pw-secret"))
    window = GameWindow(server.url)
    try:
        you = Person(window)
        login = window.current_view
        you.type("alice")
        you.key("Return")  # to the password field
        you.type("pw-secret")
        assert (login.name_input.text, login.password_input.text) == ("alice", "pw-secret")
        # The password is not on screen: nine typed characters look exactly like any other nine.
        login.password_input.deactivate()  # no blinking caret in the pictures
        typed = field_pixels(window, login.password_input)
        login.password_input.text = "xxxxxxxxx"
        other = field_pixels(window, login.password_input)
        login.password_input.text = "abc"
        shorter = field_pixels(window, login.password_input)
        login.password_input.text = "pw-secret"
        assert (typed == other).all() and (typed != shorter).any()
        you.click(*button(login, "Register").rect.center)
        wait(window, lambda: type(window.current_view).__name__ == "PlayView", what="the game")
        play = window.current_view
        wait(window, lambda: play.scene is not None and play.scene.by_name("bob") is not None, what="room and bob")
        wait(window, lambda: play.pending_moves == 0, what="settled")
        start = play.my_tile

        # Enter opens the chat line; a sentence full of w, a, s, d, e and t goes into it, not to the llama.
        you.key("Return")
        assert play.chat_input.active
        you.type(SENTENCE)
        you.key("Return")
        heard = loop.run_until_complete(bob.wait_for(lambda e: e["Action"] == "ChatLine" and e["From"] == "alice",
                                                     timeout=10, past=True))
        assert heard["Text"] == SENTENCE
        assert play.my_tile == start and play.panel is None and not play.chat_input.active
        alice = next(e for e in bob.view.entities.values() if e.name == "alice")
        assert (alice.x, alice.y) == start  # the server agrees: she never took a step

        # T opens the chat too, without typing a "t".
        you.key("t")
        you.type("hay is good")
        you.key("Return")
        heard = loop.run_until_complete(bob.wait_for(lambda e: e["Action"] == "ChatLine" and e["Text"].startswith(
            "hay"), timeout=10, past=True))
        assert heard["Text"] == "hay is good"

        # Walk up to Dolly by clicking next to her, and talk to her by name.
        def go_near(name, reach):
            for _ in range(6):
                llama = play.scene.by_name(name)
                tx, ty = play.scene.tile_at(*llama.sprite.position)
                if (tx - play.my_tile[0]) ** 2 + (ty - play.my_tile[1]) ** 2 <= (reach - 1) ** 2:
                    return
                goal = min(((tx + dx, ty + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy),
                           key=lambda t: not play.scene.room.walkable(*t))
                sx, sy, *_ = play.camera.project(play.scene.center(*goal))
                you.click(sx, sy)
                wait(window, lambda: not play.path and play.pending_moves == 0, 20, f"walking to {name}")
            raise AssertionError(f"could not reach {name}")

        go_near("Dolly", 6)
        idle = set(DOLLY["lines"]["idle"])
        asked = len(play.chat)
        you.key("Return")
        you.type("Dolly, do you like hay?")
        you.key("Return")
        answered = lambda: [c for c in play.chat[asked:] if c.get("Npc") == "dolly" and c["Text"] not in idle]
        wait(window, answered, 40, "Dolly's answer")
        assert answered()[0]["From"] == "Dolly" and answered()[0]["Text"]

        # To the King by clicking the way, E for his panel, the petition typed into its field and sent with Enter.
        def go(tile):
            # Click once the llama has settled (after a portal the new room's first ticks are still arriving), and
            # again if the walk stopped short; done when the llama stands on the tile.
            for _ in range(3):
                wait(window, lambda: play.pending_moves == 0 and (play.model.x, play.model.y) == play.my_tile,
                     30, "settling")
                sx, sy, *_ = play.camera.project(play.scene.center(*tile))
                you.click(sx, sy)
                wait(window, lambda: not play.path and play.pending_moves == 0, 30, f"walking to {tile}")
                if play.my_tile == tile:
                    return

        poses = []
        me = play.scene.llamas[play.model.me]
        sx, sy, *_ = play.camera.project(play.scene.center(19, 6))
        you.click(sx, sy)
        wait(window, lambda: poses.append(me.pose) or (not play.path and play.pending_moves == 0), 30, "walking")
        wait(window, lambda: me.sprite.position == me.target, 5, "arriving")
        play.scene.update(0.0)
        # Legs moved on the way (a walking frame was worn; which ones the polling saw depends on the machine's
        # speed), and now it stands.
        assert {frame for _, frame in poses} & {1, 2} and me.pose[1] == 0
        sx, sy, *_ = play.camera.project(play.scene.center(19, 0))
        you.click(sx, sy)
        wait(window, lambda: play.scene.name == "fed-hall", 30, "the Fed hall")
        go((12, 8))
        you.key("e")
        assert type(play.panel).__name__ == "KingPanel"
        wait(window, lambda: "Offering" in play.panel.info.text, what="the offering")
        you.click(*play.panel.text.rect.center)
        petition = "Please build a reading room in the hall, so that every young llama can learn to read."
        you.type(petition)
        assert play.panel.text.text == petition and play.my_tile == (12, 8)
        you.key("Return")
        wait(window, lambda: "Payout" in play.panel.out.text, 60, "the verdict")
        history = loop.run_until_complete(bob.request("Petitions"))  # bob has none; alice's is in the panel
        assert history["Petitions"] == [] and "Grade" in play.panel.out.text
    finally:
        window.close()
        loop.run_until_complete(bob.close())
        server.stop()


def test_a_crowd_of_thirty_chatting_llamas_stays_readable(display, tmp_path):
    """Thirty llamas in one place, all talking at once: every bubble is drawn, wrapped, and no two cover each
    other; neither do names; the chat panel wraps long lines instead of cutting them."""
    from client.app import GameWindow
    from client.crowd import overlaps
    from client.driver import screenshot

    server = ServerProcess(f"sqlite:///{tmp_path / 'crowd.db'}", None, DEFAULT_WORLD, "--no-inference")
    loop = asyncio.new_event_loop()

    async def gather():
        out = []
        for i in range(30):
            client = await GameClient.connect(server.url)
            await client.register(f"llama{i:02d}", "pw-secret")
            out.append(client)
        return out

    crowd = loop.run_until_complete(gather())
    window = GameWindow(server.url)
    try:
        you = Person(window)
        you.type("alice")
        you.key("Return")
        you.type("pw-secret")
        you.click(*button(window.current_view, "Register").rect.center)
        wait(window, lambda: type(window.current_view).__name__ == "PlayView", what="the game")
        play = window.current_view
        wait(window, lambda: play.scene is not None and len(play.scene.llamas) >= 31, what="the crowd in view")
        long = "Hello from the crowd: what a lovely day in the plaza for a long walk about with everyone!"

        async def talk():
            for i, client in enumerate(crowd):
                await client.chat(f"{long} ({i})" if i % 2 else f"hi {i}")

        loop.run_until_complete(talk())
        wait(window, lambda: len(play.scene.bubble_rects) == 30, what="thirty bubbles")
        screenshot(window, tmp_path / "crowd.png")
        rects = play.scene.bubble_rects
        assert not [(a, b) for i, a in enumerate(rects) for b in rects[i + 1:] if overlaps(a, b)]
        assert not [(a, ll.name) for a in rects for ll in play.scene.llamas.values() if overlaps(a, ll.name_rect())]
        assert max(r[3] for r in rects) > 2 * min(r[3] for r in rects)  # long lines wrap onto more lines
        names = [(ll.label.x - ll.label.content_width / 2, ll.label.y, ll.label.content_width, 11)
                 for ll in play.scene.llamas.values() if ll.sprite.position == ll.target]
        assert not [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if overlaps(a, b)]
        assert any(text.startswith("   ") for text, _ in sum((play.chat_lines(c) for c in play.chat), []))
    finally:
        window.close()
        for client in crowd:
            loop.run_until_complete(client.close())
        server.stop()
