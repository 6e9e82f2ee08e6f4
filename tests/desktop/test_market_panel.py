"""The market panel under real X input (xdotool on Xvfb): walk up to Tess the Trader, press E, type a price and a
quantity, click Buy — the order is in the book the server keeps, in the panel's book, and on the price chart."""

import asyncio

import numpy as np

from client.net import GameClient
from server.core.units import UNIT

from conftest import ServerProcess
from court import DEFAULT_WORLD
from test_client_input import button, register_by_typing, wait, walk_next_to


def test_a_player_places_an_order_through_the_panel_and_sees_it_on_the_chart(display, tmp_path):
    from client.app import GameWindow
    from client.chart import BID
    from client.driver import screenshot

    server = ServerProcess(f"sqlite:///{tmp_path / 'm.db'}", None, DEFAULT_WORLD, "--no-inference")
    loop = asyncio.new_event_loop()
    window = GameWindow(server.url)
    try:
        you, play = register_by_typing(window, "alice")
        wait(window, lambda: play.scene is not None and play.scene.by_name("Tess the Trader") is not None, 15,
             "Tess in the plaza")
        walk_next_to(window, you, play, "Tess the Trader", "tess")
        you.key("e")
        panel = play.panel
        assert type(panel).__name__ == "TraderPanel"
        wait(window, lambda: "Holds" in panel.info.text, 10, "what Tess holds")
        you.click(*panel.price.rect.center)
        you.type("0.25")
        you.click(*panel.quantity.rect.center)
        you.type("2")
        assert (panel.price.text, panel.quantity.text) == ("0.25", "2")
        you.click(*button(play, "Buy").rect.center)
        wait(window, lambda: "buy 2 @ 0.25" in panel.out.text, 10, "the order among my orders")
        wait(window, lambda: "0.25×2" in panel.book.text and panel.chart.orders == [("buy", 250 * 10**9)], 10,
             "the order in the book and on the chart")
        # the server's book has it too, as any other player sees it
        bob = loop.run_until_complete(GameClient.connect(server.url))
        loop.run_until_complete(bob.register("bob", "pw-secret"))
        book = loop.run_until_complete(bob.request("OrderBook"))
        assert book["Bids"] == [[250 * 10**9, 2 * UNIT]]
        # and on screen: the chart draws the bid as a green line
        image = np.asarray(screenshot(window, None).convert("RGB")).astype(int)
        r = panel.chart.rect
        area = image[window.height - int(r.top):window.height - int(r.bottom), int(r.left):int(r.right)]
        green = np.all(np.abs(area - np.array(BID)) < 30, axis=-1).sum()
        assert green > 100, green
        loop.run_until_complete(bob.close())
    finally:
        window.close()
        server.stop()
