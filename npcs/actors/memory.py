"""NPC memory: each AI NPC keeps a few short facts per player (their name, their last petition and its verdict,
the last joke topic, …) and reads them back into its prompts as the {memory} variable.

Facts are soft state: kept in memory, written behind to the `npcfact` table, loaded at start. Each fact is one
line of at most FACT_MAX characters, so a player cannot grow another prompt by what an NPC remembers of them.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import select

from server.core.db import Database, NpcFact

FACT_MAX = 80
FACTS_MAX = 6


def _clean(value: Any) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= FACT_MAX else text[: FACT_MAX - 1] + "…"


class NpcMemory:
    def __init__(self, db: Database):
        self.db = db
        self.facts: dict[tuple[str, str], dict[str, str]] = {}

    def load(self) -> None:
        with self.db.session() as session:
            for row in session.exec(select(NpcFact)):
                self.facts[(row.npc, row.player)] = json.loads(row.facts)

    def remember(self, npc: str, player: str, t_ms: int, **facts: Any) -> None:
        known = self.facts.setdefault((npc, player), {})
        for key, value in facts.items():
            known.pop(key, None)  # re-inserted last: the newest facts survive the trim
            known[key] = _clean(value)
        while len(known) > FACTS_MAX:
            known.pop(next(iter(known)))
        row = NpcFact(npc=npc, player=player, facts=json.dumps(known), t_ms=t_ms)
        self.db.submit_nowait(lambda session: session.merge(row))

    def recall(self, npc: str, player: str) -> str:
        """The {memory} text for a prompt: what this NPC knows of this player, or that they are new."""
        known = self.facts.get((npc, player))
        if not known:
            return f"You have not met {player} before."
        return f"What you remember about {player}: " + "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in known.items()) + "."
