"""The desktop client in a world spread over processes (a bank and two room hosts on PostgreSQL and nats-server),
under real X input: it registers at the bank, is sent to the host of the plaza, walks through the door into the
Fed hall on the other host and chats there — every hand-off followed by itself, the picture checked."""

import asyncio

import numpy as np

from client.net import GameClient

from conftest import ServerProcess
from court import DEFAULT_WORLD
from test_client_input import register_by_typing, wait


def test_the_client_follows_hand_offs_between_room_hosts(display, postgres, nats_server):
    from client.app import GameWindow
    from client.driver import screenshot

    db = postgres.new_database()
    common = ("--nats", nats_server.url, "--no-inference", "--lease-ttl", "2")
    bank = ServerProcess(db, None, DEFAULT_WORLD, "--bank", *common)
    a = ServerProcess(db, None, DEFAULT_WORLD, "--rooms", "plaza,stage,pasture", *common)
    b = ServerProcess(db, None, DEFAULT_WORLD, "--rooms", "fed-hall,grove", *common)
    loop = asyncio.new_event_loop()
    bob = loop.run_until_complete(GameClient.connect(b.url))
    loop.run_until_complete(bob.register("bob", "pw-secret"))  # sent to the plaza's host...
    loop.run_until_complete(bob.request("Chat", Text="the hall is through the north door"))
    window = GameWindow(bank.url)
    try:
        you, play = register_by_typing(window, "alice")
        net = window.net
        wait(window, lambda: play.scene is not None and play.scene.name == "plaza", 15, "the plaza")
        assert net.client.url == a.url and net.client.moves == 1  # the bank serves no room: sent to A
        wait(window, lambda: play.scene.by_name("bob") is not None, 15, "bob in the plaza")
        assert "the hall is through the north door" in [c["Text"] for c in play.chat]
        wait(window, lambda: play.pending_moves == 0, 10, "settled")
        # Click the way to the north door (as a player would: a tile near it, then the door itself).
        for tile in ((19, 6), (19, 0)):
            wait(window, lambda: play.pending_moves == 0 and not play.path, 30, "settling")
            sx, sy, *_ = play.camera.project(play.scene.center(*tile))
            you.click(sx, sy)
        wait(window, lambda: play.scene.name == "fed-hall", 40, "the Fed hall on the other host")
        assert net.client.url == b.url and net.client.moves == 2 and net.status == "online"
        wait(window, lambda: play.pending_moves == 0, 10, "settled in the hall")
        assert play.scene.by_name("bob") is None  # bob stayed in the plaza, on A
        you.key("Return")
        you.type("hello from the hall")
        you.key("Return")
        wait(window, lambda: any(c["Text"] == "hello from the hall" and c["From"] == "alice" for c in play.chat),
             10, "my line in the hall's chat")
        # The picture is the hall's: the map drawn, the llama in it.
        image = np.asarray(screenshot(window, None).convert("RGB")).astype(int)
        assert image.std() > 20 and len(np.unique(image.reshape(-1, 3), axis=0)) > 50
        assert play.scene.llamas[play.model.me] is not None
    finally:
        window.close()
        loop.run_until_complete(bob.close())
        for p in (a, b, bank):
            p.stop()
