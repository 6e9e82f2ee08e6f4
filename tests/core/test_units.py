"""Base units: one parser and one printer for every amount a person writes or reads."""

from decimal import Decimal

import pytest

from server.core.units import DECIMALS, UNIT, parse_amount, show


def test_parse_is_exact_for_strings_ints_and_the_floats_toml_gives():
    assert parse_amount("2.5") == 2 * UNIT + UNIT // 2
    assert parse_amount(3) == 3 * UNIT
    assert parse_amount(0.1) == UNIT // 10  # str(0.1) is "0.1": no binary rounding reaches the ledger
    assert parse_amount("0.000000000001") == 1
    assert parse_amount(Decimal("7")) == 7 * UNIT


@pytest.mark.parametrize("bad", ["", "abc", "1e", "0.0000000000001", True, None, [1], "inf", "nan"])
def test_parse_refuses_what_is_not_a_whole_number_of_base_units(bad):
    with pytest.raises(ValueError):
        parse_amount(bad)


def test_show_round_trips_and_drops_trailing_zeros():
    for amount in (0, 1, UNIT, 25 * UNIT // 10, 300 * UNIT, 1_000_000 * UNIT, 123456789012345):
        assert parse_amount(show(amount)) == amount
    assert show(UNIT) == "1" and show(15 * UNIT // 10) == "1.5" and show(1) == "0." + "0" * (DECIMALS - 1) + "1"
    assert show(1_000_000 * UNIT) == "1000000"
