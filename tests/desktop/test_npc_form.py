"""A form generated from an NPC program's declared actions, under real X input (xdotool on Xvfb): the lottery
llama runs as a process of its own; the player walks up to it, presses E, types a wish, clicks "Buy a ticket" —
the answer is in the panel, the ticket's wAR in the llama's account on the server, and the form on screen."""

import asyncio
import subprocess
import sys

import numpy as np

from client.net import GameClient
from server.core.units import UNIT
from server.world.reader import load_world

from conftest import ROOT, ServerProcess, run_cli
from court import DEFAULT_WORLD, spot
from test_client_input import button, register_by_typing, wait, walk_next_to


def test_a_player_buys_a_lottery_ticket_through_the_generated_form(display, tmp_path):
    from client.app import GameWindow
    from client.driver import screenshot

    db = f"sqlite:///{tmp_path / 'f.db'}"
    server = ServerProcess(db, None, DEFAULT_WORLD, "--no-inference")
    x, y = spot(load_world(DEFAULT_WORLD))
    added = run_cli("admin", "npc", "add", "Lotto", "--room", "plaza", "--at", f"{x},{y}", "--url", server.url,
                    "--db", db)
    assert added.returncode == 0, added.stderr
    lottery = subprocess.Popen([sys.executable, "-m", "npcs.programs.lottery", "--url", server.url, "--name", "Lotto",
                                "--key", added.stdout.split()[-1], "--state", str(tmp_path / "lotto.json")],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    loop = asyncio.new_event_loop()
    window = GameWindow(server.url)
    try:
        you, play = register_by_typing(window, "alice")
        wait(window, lambda: play.scene is not None and play.scene.by_name("Lotto") is not None
             and any(n["Id"] == "lotto" for n in play.scene.npcs.values()), 20, "Lotto in the plaza")
        walk_next_to(window, you, play, "Lotto", "lotto")
        you.key("e")
        panel = play.panel
        assert type(panel).__name__ == "FormPanel" and list(panel.actions) == ["ticket", "pot", "last_draw"]
        wish = panel.boxes["ticket"]["wish"]
        you.click(*wish.rect.center)
        you.type("rain")
        assert wish.text == "rain"
        buy = button(play, "Buy a ticket · 1 wAR")
        you.click(*buy.rect.center)
        wait(window, lambda: "a ticket for round 1, wishing 'rain'" in panel.out.text, 15, "the llama's answer")
        wait(window, lambda: "paid 1 wAR" in panel.out.text, 5, "the price paid")
        wait(window, lambda: "ticket #1" in panel.out.text, 10, "the llama's whisper")
        assert play.wallet["wAR"] == 9 * UNIT
        # the server agrees, as another player sees it: the ticket's wAR is the llama's
        bob = loop.run_until_complete(GameClient.connect(server.url))
        balances = loop.run_until_complete(bob.request("Balances", Token="wAR"))["Balances"]
        assert balances["Lotto"] == UNIT and balances["alice"] == 9 * UNIT
        loop.run_until_complete(bob.close())
        # a field outside its declaration is caught in the form, before anything is sent
        you.click(*wish.rect.center)
        you.type("x" * 40)
        you.click(*buy.rect.center)
        wait(window, lambda: "wish" in panel.out.text and "1-40" not in panel.out.text and "0-40" in panel.out.text,
             5, "the form's own check")
        # on screen: the panel with its buttons, inside the window
        image = screenshot(window, tmp_path / "npc-form.png")
        pixels = np.asarray(image.convert("RGB")).astype(int)
        r = buy.rect
        assert 0 <= r.left and r.right <= window.width and 0 <= r.bottom and r.top <= window.height
        area = pixels[window.height - int(r.top):window.height - int(r.bottom), int(r.left):int(r.right)]
        assert area.std() > 10  # a drawn button with its label, not an empty patch
    finally:
        window.close()
        lottery.kill()
        server.stop()
