"""The session state machine and route table (server/net/session.py), without a socket."""

import pytest

from server.core import protocol
from server.core.protocol import Code, ProtocolError
from server.net.session import ROUTES, Phase, RateLimit, after, decide


def code_of(phase, action, **fields):
    try:
        decide(phase, {"Action": action, "Id": "1", **fields}, "alice")
    except ProtocolError as exc:
        return exc.code
    return None


def test_one_route_per_protocol_action_and_each_has_a_handler_kind():
    assert ROUTES.keys() == protocol.ACTIONS.keys()
    assert {r.to for r in ROUTES.values()} == {"hello", "ping", "auth", "logout", "room", "npc", "fed", "herd",
                                                 "wallet", "admin", "market", "citizen", "program-login",
                                                 "program"}
    assert {r.who for r in ROUTES.values()} <= {"anyone", "visitor", "greeted", "player", "program"}


@pytest.mark.parametrize("action", sorted(protocol.ACTIONS))
def test_before_hello_only_hello_is_accepted(action):
    assert code_of(Phase.NEW, action) == (None if action == "Hello" else Code.HELLO_REQUIRED)


def test_a_visitor_may_ask_public_things_and_log_in_but_not_play():
    for action in ("Ping", "FedInfo", "HerdInfo", "TokenInfo", "Balances", "Register", "Login", "Resume",
                   "AdminCredit"):
        assert code_of(Phase.GREETED, action) is None, action
    for action in ("Move", "Chat", "Whisper", "Petition", "Quote", "OracleInfo", "Petitions", "Balance",
                   "Transfer", "Logout"):
        assert code_of(Phase.GREETED, action) == Code.NOT_LOGGED_IN, action


def test_a_player_cannot_log_in_again_without_logging_out():
    for action in ("Register", "Login", "Resume"):
        with pytest.raises(ProtocolError) as exc:
            decide(Phase.PLAYING, {"Action": action, "Id": "9"}, "alice")
        assert exc.value.code == Code.ALREADY_LOGGED_IN and exc.value.ref == "9" and "alice" in exc.value.message
    assert decide(Phase.PLAYING, {"Action": "Move", "Dir": "E"}).to == "room"
    assert decide(Phase.PLAYING, {"Action": "Quote", "Id": "2"}).to == "npc"


def test_an_npc_program_sends_only_its_own_requests_and_players_none_of_them():
    program_only = [a for a, r in ROUTES.items() if r.who == "program"]
    assert set(program_only) == {"Declare", "Price", "Answer", "Announce", "Tell", "Pay", "Funds", "Outcomes"}
    for action in program_only:
        assert code_of(Phase.PROGRAM, action) is None, action
        assert code_of(Phase.PLAYING, action) == Code.FORBIDDEN, action
        assert code_of(Phase.GREETED, action) == Code.FORBIDDEN, action
    for action in ("Move", "Chat", "Whisper", "Transfer", "Petition", "PlaceOrder", "Use", "Logout"):
        assert code_of(Phase.PROGRAM, action) == Code.FORBIDDEN, action
    for action in ("Login", "Register", "NpcLogin"):
        assert code_of(Phase.PROGRAM, action) == Code.ALREADY_LOGGED_IN, action
    for action in ("Ping", "MarketInfo", "OrderBook", "TokenInfo"):  # public things stay public
        assert code_of(Phase.PROGRAM, action) is None, action
    assert after(Phase.GREETED, "NpcLogin") is Phase.PROGRAM


def test_phases_follow_the_requests_that_succeeded():
    phase = after(Phase.NEW, "Hello")
    assert phase is Phase.GREETED and after(phase, "Hello") is Phase.GREETED
    assert after(phase, "Login") is Phase.PLAYING and after(Phase.PLAYING, "Move") is Phase.PLAYING
    assert after(Phase.PLAYING, "Logout") is Phase.GREETED


def test_rate_limit_refills_at_the_rate_and_counts_strikes():
    limit = RateLimit(rate=10.0, burst=3, now=0.0)
    assert [limit.allow(0.0) for _ in range(4)] == [True, True, True, False] and limit.strikes == 1
    assert limit.allow(0.1) and not limit.allow(0.1)  # 0.1 s at 10/s is one more request
    assert limit.allow(10.0) and limit.tokens == 2.0  # never more than the burst
