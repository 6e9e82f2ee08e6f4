"""Citizenship in the desktop client, under real X input (xdotool on Xvfb) against a real `serve` of a world whose
citizens are invited: a player registers with an invite code typed at the login screen and is a citizen at once;
another registers without one, sees that they are not a citizen and how to become one, types "/citizen CODE" in
chat, and gets the allowance; a used code is refused in plain words."""

import asyncio

import numpy as np

from client.net import GameClient
from server.core.units import UNIT

from conftest import ServerProcess, world_with
from test_client_input import register_by_typing, wait


def test_invite_codes_at_the_login_screen_and_in_chat(display, tmp_path):
    from client.app import GameWindow
    from client.driver import screenshot

    db = f"sqlite:///{tmp_path / 'cit.db'}"
    world = world_with(tmp_path, 'mode = "invite"')
    server = ServerProcess(db, None, world, "--no-inference")
    loop = asyncio.new_event_loop()
    key = (tmp_path / "cit.db.admin-key").read_text().strip()
    operator = loop.run_until_complete(GameClient.connect(server.url))
    first, second = loop.run_until_complete(operator.request("AdminInvite", Key=key, Count=2))["Codes"]
    window = GameWindow(server.url, world)
    try:
        # alice types her code into the login screen's invite box and registers: a citizen, with the allowance
        you, play = register_by_typing(window, "alice", invite=first)
        wait(window, lambda: play.wallet["wAR"] == 10 * UNIT and play.citizenship.get("Mode") == "invite", 10,
             "alice's allowance")
        assert play.citizen_hint() == ""
        window.close()
        # bob registers without a code: he plays, but is told he is not a citizen and how to become one
        window = GameWindow(server.url, world)
        you, play = register_by_typing(window, "bob")
        wait(window, lambda: play.citizenship.get("Citizen") is False, 10, "bob's citizenship")
        wait(window, lambda: "/citizen CODE" in play.texts["status"].text, 5, "the hint on screen")
        assert play.wallet["wAR"] == 0
        for code, says in ((first, "That invite code is unknown or was used already."),
                           (second, "citizen of this world now")):
            you.key("Return")
            you.type(f"/citizen {code}")
            you.key("Return")
            wait(window, lambda: any(says in c["Text"] for c in play.chat), 10, f"the answer to {code}")
        wait(window, lambda: play.wallet["wAR"] == 10 * UNIT, 10, "bob's allowance")
        wait(window, lambda: "citizen" not in play.texts["status"].text, 5, "the hint gone")
        image = np.asarray(screenshot(window, tmp_path / "citizen.png").convert("RGB")).astype(int)
        hud = image[0:30, window.width - 300:window.width]  # the wallet, top right, drawn in gold
        assert ((hud[..., 0] > 180) & (hud[..., 1] > 150) & (hud[..., 2] < 90)).sum() > 50
    finally:
        window.close()
        loop.run_until_complete(operator.close())
        server.stop()
