"""The Fed's monetary policy as pure functions: what a petition may pay, and whether it may be heard now.

The LLM only proposes grades (and npcs/actors/judge.py decides which grade stands); everything that decides money is
here, in code, and unit-tested: payout = gradeMult x uniqueness x mood LLAMA, where gradeMult = 0 for grade 0 else grade + 1,
uniqueness 1-5 comes from text similarity to earlier petitions (not from the model), and mood from the
epoch's committed seed. The result is then clamped by the per-petition maximum, the hourly emission cap and
the supply cap, and every clamp is recorded with the verdict.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

SHINGLE = 4  # characters per shingle: near-duplicates share most of them, different petitions few
HOUR_MS = 3_600_000
_WORDS = re.compile(r"[^a-z0-9]+")
# (similarity at or above, uniqueness): a copy or a near-copy of an earlier petition scores 1.
UNIQUENESS_STEPS = ((0.7, 1), (0.5, 2), (0.35, 3), (0.2, 4))
MIN_SHINGLES = 8  # fewer distinct shingles than this ("hi", "pls") is too little text to be unique
MIN_VARIETY = 0.35  # distinct / total shingles: below it, the petition mostly repeats itself


def normalize(text: str) -> str:
    return " ".join(_WORDS.split(text.lower())).strip()


def shingles(text: str) -> list[str]:
    t = normalize(text)
    return [t[i : i + SHINGLE] for i in range(max(0, len(t) - SHINGLE + 1))]


def similarity(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def uniqueness(text: str, earlier: list[set[str]]) -> tuple[int, float]:
    """(uniqueness 1-5, the highest similarity to an earlier petition)."""
    grams = shingles(text)
    mine = set(grams)
    if len(mine) < MIN_SHINGLES or len(mine) / len(grams) < MIN_VARIETY:
        return 1, 1.0
    closest = max((similarity(mine, other) for other in earlier), default=0.0)
    for at_least, score in UNIQUENESS_STEPS:
        if closest >= at_least:
            return score, closest
    return 5, closest


def grade_mult(grade: int) -> int:
    return 0 if grade == 0 else grade + 1


def median_grade(votes: list[int]) -> int:
    """The grade that stands: the median vote (the lower middle one for an even committee)."""
    return int(statistics.median_low(votes))


@dataclass(frozen=True)
class Policy:
    """A world's monetary policy (the King's NPC file, [economy]); amounts in LLAMA base units."""

    offering: int  # wAR base units a petition escrows
    max_payout: int
    hourly_cap: int
    cooldown_count: int
    cooldown_ms: int
    epoch_ms: int
    min_chars: int = 2
    max_chars: int = 250


@dataclass(frozen=True)
class Payout:
    amount: int
    formula: int  # gradeMult x uniqueness x mood, before any clamp
    clamps: tuple[str, ...]


def payout(grade: int, unique: int, mood: int, unit: int, policy: Policy, emitted_last_hour: int,
           supply: int, cap: int) -> Payout:
    formula = grade_mult(grade) * unique * mood * unit
    amount, clamps = formula, []
    for name, limit in (("per-petition maximum", policy.max_payout),
                        ("hourly emission cap", max(0, policy.hourly_cap - emitted_last_hour)),
                        ("supply cap", max(0, cap - supply))):
        if amount > limit:
            amount = limit
            clamps.append(name)
    return Payout(amount, formula, tuple(clamps))


def emitted_since(emissions: list[list[int]], t_ms: int) -> int:
    """LLAMA minted by verdicts in the hour before t_ms; emissions are [t, amount] pairs."""
    return sum(amount for t, amount in emissions if t > t_ms - HOUR_MS)


def cooldown_until(times: list[int], t_ms: int, policy: Policy) -> int | None:
    """None if a player whose counted petitions were at `times` may petition at t_ms; else when they may."""
    recent = sorted(t for t in times if t > t_ms - policy.cooldown_ms)
    if len(recent) < policy.cooldown_count:
        return None
    return recent[len(recent) - policy.cooldown_count] + policy.cooldown_ms
