"""The Arcade client, as a player uses it: a real window on a virtual display (Xvfb), a real server process with
the real model, a bot for company. Assertions on the client's state and on its screenshots."""

import asyncio
import os
import subprocess
import time

import numpy as np
import pytest

from client.net import GameClient
from npcs.wander import find_path

from conftest import ServerProcess, free_port
from court import DEFAULT_WORLD

UNIT = 10**12


def region(image, x0, y0, x1, y1):
    """Pixels of a screenshot region given in window coordinates (y up, like arcade)."""
    arr = np.asarray(image.convert("RGB"))
    h = arr.shape[0]
    return arr[h - y1:h - y0, x0:x1]


def wait(window, cond, seconds=10.0, what=""):
    from client.driver import pump

    assert pump(window, seconds, until=cond), f"timed out waiting for {what}"


def test_login_errors_are_plain(display, tmp_path):
    from client.app import GameWindow
    from client.driver import pump

    closed_port = free_port()
    window = GameWindow(f"ws://127.0.0.1:{closed_port}/")
    try:
        login = window.current_view
        login.name_input.text, login.password_input.text = "alice", "pw-secret"
        login.submit(register=False)
        wait(window, lambda: login.error, what="an error")
        assert login.error.startswith("Cannot reach the server") and str(closed_port) in login.error
        server = ServerProcess(f"sqlite:///{tmp_path / 'v.db'}", None, DEFAULT_WORLD, "--no-inference")
        try:
            window.net.url, window.net.version = server.url, 99
            login.submit(register=False)
            wait(window, lambda: "protocol" in login.error, what="a version error")
            assert "Update your client" in login.error
            window.net.version = None
            login.submit(register=False)
            wait(window, lambda: "Wrong name" in login.error, what="wrong credentials")
            login.password_input.text = "123"
            login.submit(register=True)
            wait(window, lambda: "at least 6" in login.error, what="a weak password")
            pump(window, 0.1)
        finally:
            server.stop()
    finally:
        window.close()


def test_a_player_logs_in_walks_chats_and_petitions(display, tmp_path):
    import arcade

    from client.app import GameWindow
    from client.driver import click, press, pump, screenshot, type_text

    server = ServerProcess(f"sqlite:///{tmp_path / 'c.db'}", None, DEFAULT_WORLD, "--inference-workers", "1",
                           "--inference-threads", "2")
    loop = asyncio.new_event_loop()
    bob = loop.run_until_complete(GameClient.connect(server.url))
    loop.run_until_complete(bob.register("bob", "pw-secret"))
    window = GameWindow(server.url)
    try:
        login = window.current_view
        login.name_input.text, login.password_input.text = "bob", "pw-secret"
        login.submit(register=True)
        wait(window, lambda: "taken" in login.error, what="name taken")
        login.name_input.text = "alice"
        login.submit(register=True)
        wait(window, lambda: type(window.current_view).__name__ == "PlayView", what="the game")
        play = window.current_view
        wait(window, lambda: play.scene is not None and play.wallet["wAR"] == 10 * UNIT, what="room and wallet")
        wait(window, lambda: play.scene.by_name("bob") is not None, what="bob in view")
        shot = screenshot(window, tmp_path / "plaza.png")
        middle = region(shot, 300, 200, 980, 520)
        assert len(np.unique(middle.reshape(-1, 3), axis=0)) > 50  # a drawn map, not a blank screen
        assert (middle[..., 1] > middle[..., 0] + 40).mean() > 0.3  # mostly grass

        # Walk: a few steps south (the fountain is north of the spawn), predicted at once, confirmed by the server.
        start = play.my_tile
        press(window, arcade.key.S, hold=0.28)
        wait(window, lambda: play.pending_moves == 0 and (play.model.x, play.model.y) == play.my_tile, what="walk")
        assert play.my_tile[1] > start[1] and play.my_tile[0] == start[0]

        # Chat: typed into the chat box, heard by bob; bob's answer appears in the client, over his head too.
        press(window, arcade.key.ENTER)
        type_text(window, "hello from the client\r")
        heard = loop.run_until_complete(bob.wait_for(
            lambda e: e["Action"] == "ChatLine" and e["Text"] == "hello from the client", timeout=5, past=True))
        assert heard["From"] == "alice"
        loop.run_until_complete(bob.chat("welcome, alice!"))
        wait(window, lambda: any(c.get("Text") == "welcome, alice!" for c in play.chat), what="bob's line")
        assert play.scene.by_name("bob").bubble.text == "welcome, alice!"
        shot = screenshot(window, tmp_path / "chat.png")
        chat_box = region(shot, 12, 48, 478, 48 + 9 * 18 + 8)
        assert (chat_box.min(axis=2) > 200).sum() > 300  # light text on the dark chat panel

        # To the King: click-to-move to the hall's door, then up to the throne.
        def go(tile):
            # Click once the llama has settled (after a portal the new room's first ticks are still arriving), and
            # again if the walk stopped short; done when the llama stands on the tile.
            for _ in range(3):
                wait(window, lambda: play.pending_moves == 0 and (play.model.x, play.model.y) == play.my_tile,
                     20, "settling")
                sx, sy, *_ = play.camera.project(play.scene.center(*tile))
                click(window, sx, sy)
                wait(window, lambda: not play.path and play.pending_moves == 0, 20, f"walking to {tile}")
                if play.my_tile == tile:
                    return

        go((19, 6))
        sx, sy, *_ = play.camera.project(play.scene.center(19, 0))
        click(window, sx, sy)
        wait(window, lambda: play.scene.name == "fed-hall", 30, "the Fed hall")
        go((12, 8))
        press(window, arcade.key.E)
        assert type(play.panel).__name__ == "KingPanel"
        wallet_before = region(screenshot(window, None), 980, 690, 1280, 720).copy()
        markers = []
        shown = play.thinking
        play.thinking = lambda npc, text: (markers.append((npc, text)), shown(npc, text))
        play.panel.text.text = "Please build a reading room in the hall for young llamas."
        play.panel.petition()
        wait(window, lambda: "Payout" in play.panel.out.text, 60, "the verdict")
        assert ("king", "thinking…") in markers or any(t.startswith("thinking… (") for _, t in markers)
        assert markers[-1] == ("king", "")  # cleared with the verdict
        assert play.wallet["wAR"] == 9 * UNIT
        assert "Grade" in play.panel.out.text and "Governor Hawk" in play.panel.out.text
        wallet_after = region(screenshot(window, tmp_path / "verdict.png"), 980, 690, 1280, 720)
        assert (wallet_before != wallet_after).any() or play.wallet["LLAMA"] == 0  # the HUD redrew the balance
        play.panel.history()
        wait(window, lambda: "granted" in play.panel.out.text, 10, "history")

        # The Joker on his stage and the Oracle in her grove: their panels, a paid joke, a verified High/Low game.
        def walk_to(tile):  # what a click does, for targets off screen
            room = play.scene.room
            play.path = find_path(room.walkable, play.my_tile, tile, (0, 0, room.width, room.height))
            wait(window, lambda: not play.path and play.pending_moves == 0, 30, f"walking to {tile}")

        press(window, arcade.key.ESCAPE)
        walk_to((11, 15))
        wait(window, lambda: play.scene.name == "plaza", what="the plaza")
        walk_to((0, 14))
        wait(window, lambda: play.scene.name == "stage", what="the stage")
        walk_to((13, 9))
        press(window, arcade.key.E)
        assert type(play.panel).__name__ == "JokerPanel"
        wait(window, lambda: "Fee" in play.panel.info.text, 10, "the Joker's fee")
        play.panel.topic.text = "hay"
        war = play.wallet["wAR"]
        play.panel.joke()
        wait(window, lambda: play.panel.out.text not in ("", " ") and "waiting" not in play.panel.out.text
             and "thinks" not in play.panel.out.text and "thinking" not in play.panel.out.text, 60, "the joke")
        joke = play.panel.out.text
        assert not joke.startswith("No joke")
        # NpcDone comes from the Joker, the chat line through the room: either may arrive first.
        wait(window, lambda: any(c.get("Npc") == "joker" and c["Text"] == joke for c in play.chat), 5, "the joke line")
        wait(window, lambda: play.wallet["wAR"] < war, 5, "the fee")
        press(window, arcade.key.ESCAPE)
        walk_to((25, 8))
        wait(window, lambda: play.scene.name == "plaza", what="the plaza again")
        walk_to((39, 14))
        wait(window, lambda: play.scene.name == "grove", what="the grove")
        walk_to((10, 8))
        press(window, arcade.key.E)
        assert type(play.panel).__name__ == "OraclePanel"
        wait(window, lambda: play.panel.last_commitment, 10, "a commitment")
        llama_before = play.wallet["LLAMA"]
        play.panel.bet.text = "1"
        play.panel.play_game("high")
        wait(window, lambda: "Verified" in play.panel.out.text, 10, "the game")
        assert "yes ✓" in play.panel.out.text
        won = "you win" in play.panel.out.text
        wait(window, lambda: play.wallet["LLAMA"] == llama_before + (UNIT // 2 if won else -UNIT), 5, "the payout")

        # A dropped connection comes back by itself, same place, same room.
        where = (play.scene.name, play.my_tile)
        window.net.loop.call_soon_threadsafe(window.net.client.ws.transport.abort)
        wait(window, lambda: play.status == "reconnecting", 10, "the drop")
        wait(window, lambda: play.status == "online", 20, "the reconnect")
        pump(window, 0.5)
        assert (play.scene.name, play.my_tile) == where
    finally:
        window.close()
        loop.run_until_complete(bob.close())
        loop.close()
        server.stop()
