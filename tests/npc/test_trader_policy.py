"""The trader's rules as pure code: the mood the scores mean, which lines count, and every risk limit."""

from npcs.actors.trader_policy import Holdings, Risk, counts, decide, mood_of, worth
from server.core.units import UNIT
from server.economy.book import LOT, TICK, value

RISK = Risk(max_order=20 * UNIT, max_position=200 * UNIT, orders_per_hour=12, daily_loss=20 * UNIT, band_pct=5.0,
            start_price=100 * TICK)
FULL = Holdings(war=100 * UNIT, llama=500 * UNIT, start_llama=500 * UNIT, day_value=150 * UNIT, orders_last_hour=0)


def test_the_mood_follows_the_score_difference_and_no_answer_is_no_mood():
    assert [mood_of({"positive": d, "negative": 0.0}) for d in (2.4, 1.2, 0.5, -0.8, -2.0)] == [5, 4, 3, 2, 1]
    assert mood_of(None) is None and mood_of({}) is None and mood_of({"positive": 1.0}) is None
    assert mood_of({"positive": float("nan"), "negative": 0.0}) is None


def test_a_players_lines_count_once_per_window():
    last: dict[str, int] = {}
    assert counts(last, "alice", 0, 60_000)
    assert not counts(last, "alice", 59_999, 60_000)  # the flood inside the window
    assert counts(last, "bob", 59_999, 60_000)
    assert counts(last, "alice", 60_000, 60_000)


def test_a_cheerful_mood_buys_at_the_ask_within_the_band_and_a_gloomy_one_sells():
    d = decide(5, 100 * TICK, 98 * TICK, 102 * TICK, FULL, RISK)
    assert (d.side, d.price, d.quantity) == ("buy", 102 * TICK, 20 * UNIT)
    assert d.why == "Chat is jubilant (5/5): buying 20 LLAMA at 0.102 wAR"
    half = decide(4, 100 * TICK, None, None, FULL, RISK)
    assert (half.side, half.price, half.quantity) == ("buy", 100 * TICK, 10 * UNIT)  # rests at the last price
    d = decide(1, 100 * TICK, 98 * TICK, 102 * TICK, FULL, RISK)
    assert (d.side, d.price, d.quantity) == ("sell", 98 * TICK, 20 * UNIT)
    assert decide(3, 100 * TICK, 98 * TICK, 102 * TICK, FULL, RISK).order is None


def test_it_never_crosses_the_band_around_the_last_trade():
    d = decide(5, 100 * TICK, None, 150 * TICK, FULL, RISK)  # the only ask is far above: bid at the band's edge
    assert d.side == "buy" and d.price == 105 * TICK
    d = decide(1, 100 * TICK, 50 * TICK, None, FULL, RISK)
    assert d.side == "sell" and d.price == 95 * TICK


def test_the_model_saying_buy_everything_is_clamped_by_every_limit():
    # position: it may be at most max_position above where it started
    near = Holdings(100 * UNIT, 690 * UNIT, 500 * UNIT, 150 * UNIT, 0)
    assert decide(5, 100 * TICK, None, None, near, RISK).quantity == 10 * UNIT
    full = Holdings(100 * UNIT, 700 * UNIT, 500 * UNIT, 150 * UNIT, 0)
    assert decide(5, 100 * TICK, None, None, full, RISK).order is None
    # what it can pay for
    poor = Holdings(UNIT, 500 * UNIT, 500 * UNIT, 51 * UNIT, 0)
    d = decide(5, 100 * TICK, None, None, poor, RISK)
    assert d.quantity == 10 * UNIT and value(d.price, d.quantity) <= UNIT and d.quantity % LOT == 0
    # what it holds, selling
    few = Holdings(100 * UNIT, 3 * UNIT + 5, 3 * UNIT, 100 * UNIT, 0)
    assert decide(1, 100 * TICK, None, None, few, RISK).quantity == 3 * UNIT
    # the position the other way: sold max_position below its start, it sells no more
    short = Holdings(100 * UNIT, 300 * UNIT, 500 * UNIT, 150 * UNIT, 0)
    assert decide(1, 100 * TICK, None, None, short, RISK).order is None
    # orders per hour
    busy = Holdings(100 * UNIT, 500 * UNIT, 500 * UNIT, 150 * UNIT, 12)
    assert decide(5, 100 * TICK, None, None, busy, RISK).order is None


def test_after_the_daily_loss_limit_it_stops():
    lost = Holdings(100 * UNIT, 500 * UNIT, 500 * UNIT, worth(FULL, 100 * TICK) + 21 * UNIT, 0)
    d = decide(5, 100 * TICK, None, None, lost, RISK)
    assert d.order is None and "lost my limit" in d.why
    ok = Holdings(100 * UNIT, 500 * UNIT, 500 * UNIT, worth(FULL, 100 * TICK) + 19 * UNIT, 0)
    assert decide(5, 100 * TICK, None, None, ok, RISK).order is not None


def test_a_model_failure_places_no_order():
    d = decide(None, 100 * TICK, 98 * TICK, 102 * TICK, FULL, RISK)
    assert d.order is None and d.mood is None and "no trade" in d.why
