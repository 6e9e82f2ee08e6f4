"""Commit-reveal randomness that players can check: the Fed's mood and the Oracle's High/Low roll.

The original took "mood" and the coin flip from public data (block heights, message ids), so anyone could predict
them. Here the server draws a secret seed, publishes only its sha256 (the commitment) before the seed is used, and
reveals the seed afterwards. Anyone can then check that sha256(seed) is the commitment that was published and
recompute the outcome with the functions below — they are the whole rule, with no hidden input.

- Mood: one seed per epoch (an hour by default). Commitments for the current and the next epoch are public; an
  epoch's seed is revealed once it has ended. mood = MOODS[H(seed ":" petition id) mod 6].
- High/Low: one seed per player and game. The player bets against a commitment it has seen, adds its own client
  seed, and the result reveals the server seed. roll = H(server seed ":" client seed ":" nonce) mod 100; "high"
  wins on 50-99, "low" on 0-49.
"""

from __future__ import annotations

import hashlib
import secrets

MOODS = (1, 5, 6, 7, 8, 10)  # the reference system's moods


def new_seed() -> str:
    return secrets.token_hex(32)


def commitment(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def _draw(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()[:8], "big")


def mood(seed: str, petition_id: str) -> int:
    return MOODS[_draw(seed, petition_id) % len(MOODS)]


def roll(server_seed: str, client_seed: str, nonce: int) -> int:
    return _draw(server_seed, client_seed, nonce) % 100


def wins(guess: str, rolled: int) -> bool:
    return rolled >= 50 if guess == "high" else rolled < 50


def epoch_of(t_ms: int, epoch_ms: int) -> int:
    return t_ms // epoch_ms


def check_mood(seed: str, published: str, petition_id: str, claimed: int) -> bool:
    """What a player runs after the epoch: the seed is the committed one, and it gives the mood that was paid."""
    return commitment(seed) == published and mood(seed, petition_id) == claimed


def check_roll(seed: str, published: str, client_seed: str, nonce: int, claimed: int) -> bool:
    return commitment(seed) == published and roll(seed, client_seed, nonce) == claimed
