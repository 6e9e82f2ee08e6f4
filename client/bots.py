"""Headless bots: log N players in, walk them around, let them chat, and summarise what happened.

A bot walks in a straight line, turns at random now and then and whenever the server refuses a step (a wall,
the map edge), and says something every so often. `llama-land bot` runs them; the load benchmark builds on them.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

from server.core.protocol import DIRECTIONS

from client.net import GameClient, ServerError

LINES = ["hello!", "nice day in the plaza", "anyone seen the King?", "llamas everywhere", "where is the Fed hall?"]


@dataclass
class BotStats:
    connected: int = 0
    failed: int = 0
    moves_sent: int = 0
    moves_refused: Counter = field(default_factory=Counter)
    chats_sent: int = 0
    chat_lines_heard: int = 0
    rooms_seen: set = field(default_factory=set)
    echo_ms: list = field(default_factory=list)  # own move sent -> own position seen in a Tick
    errors: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        echo = sorted(self.echo_ms)
        pct = (lambda q: f"{echo[min(len(echo) - 1, int(q * len(echo)))]:.0f}") if echo else (lambda q: "-")
        refused = ", ".join(f"{k} {v}" for k, v in sorted(self.moves_refused.items())) or "none"
        lines = [
            f"bots connected {self.connected}, failed {self.failed}",
            f"moves sent {self.moves_sent}, refused: {refused}",
            f"move echo ms: p50 {pct(0.5)}, p99 {pct(0.99)}, mean "
            f"{statistics.fmean(echo):.0f}" if echo else "move echo ms: no samples",
            f"chat lines sent {self.chats_sent}, heard {self.chat_lines_heard}",
            f"rooms visited: {', '.join(sorted(self.rooms_seen)) or '-'}",
        ]
        if self.errors:
            lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items())))
        return "\n".join(lines)


async def join(url: str, name: str, password: str) -> GameClient:
    client = await GameClient.connect(url)
    try:
        await client.register(name, password)
    except ServerError as exc:
        if exc.code != "NAME_TAKEN":
            raise
        await client.login(name, password)
    return client


async def walk_and_chat(client: GameClient, stats: BotStats, duration: float, rate_hz: float, chat_every: float,
                        rng: random.Random) -> None:
    heading = rng.choice(DIRECTIONS)
    sent: dict[tuple[int, int], float] = {}

    def on_event(ev: dict) -> None:
        if ev.get("Action") == "Tick":
            for eid, x, y in ev["M"]:
                if eid == client.view.me and (x, y) in sent:
                    stats.echo_ms.append((time.monotonic() - sent.pop((x, y))) * 1000)

    client.listeners.append(on_event)
    seen_chat = 0
    end = time.monotonic() + duration
    next_chat = time.monotonic() + rng.uniform(0, chat_every) if chat_every > 0 else float("inf")
    while time.monotonic() < end and not client.closed.done():
        view = client.view
        stats.rooms_seen.add(view.room)
        while client.errors:  # a refused step: turn
            stats.moves_refused[client.errors.popleft().get("Code")] += 1
            heading = rng.choice(DIRECTIONS)
        if rng.random() < 0.1:
            heading = rng.choice(DIRECTIONS)
        dx = (1 if "E" in heading else -1 if "W" in heading else 0)
        dy = (1 if "S" in heading else -1 if "N" in heading else 0)
        sent[(view.x + dx, view.y + dy)] = time.monotonic()
        await client.move(heading, confirm=False)
        stats.moves_sent += 1
        if time.monotonic() >= next_chat:
            try:
                await client.chat(rng.choice(LINES))
                stats.chats_sent += 1
            except ServerError as exc:
                stats.errors[exc.code] += 1
            next_chat = time.monotonic() + chat_every
        heard = sum(1 for ev in client.view.chat if ev.get("From") != client.name)
        stats.chat_lines_heard += max(0, heard - seen_chat)
        seen_chat = heard
        if len(sent) > 50:
            sent.clear()
        await asyncio.sleep(1.0 / rate_hz)


async def run_bots(url: str, count: int, duration: float = 10.0, rate_hz: float = 5.0, chat_every: float = 5.0,
                   prefix: str = "bot", password: str = "bot-password", seed: int = 1) -> BotStats:
    stats = BotStats()
    clients: list[GameClient] = []
    sem = asyncio.Semaphore(16)  # log in a few at a time: scrypt is deliberately slow

    async def one(i: int) -> None:
        async with sem:
            try:
                client = await join(url, f"{prefix}{i}", password)
            except (OSError, ServerError, asyncio.TimeoutError) as exc:
                stats.failed += 1
                stats.errors[getattr(exc, "code", None) or type(exc).__name__] += 1
                return
        stats.connected += 1
        clients.append(client)
        await walk_and_chat(client, stats, duration, rate_hz, chat_every, random.Random(seed * 100003 + i))

    await asyncio.gather(*(one(i) for i in range(count)))
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    return stats
