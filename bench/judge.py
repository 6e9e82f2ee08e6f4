"""How well, and how fast, the Llama King judges: the labelled petitions of bench/judge_set.toml through the real
server (websockets, ledgers, log, the real model), for two judge configurations in one run:

  baseline  the judge before this one: each member generates "grade=N" with the rubric template (fed-vote@1) on the
            shipped Q4_1 model; the median vote stands, capped at 1 for text that instructs the graders
  shipped   the default world: scored votes (fed-score@1, one forward pass) on the Q4_0 model, blended with the
            world's graded examples and capped by code-side signals (npcs/actors/judge.py)

For each: Spearman rank correlation of the final grade with the human label, mean grade per category, mean
payout of injections against honest petitions, the share of injections graded >= 4, and verdict latency (idle,
one at a time, and 20 at once). Then the raw baseline (the baseline's three votes run directly on llama-cpp-python,
one after another), ablations of the shipped judge from the same run's records (committee only, examples only),
the world's examples matched by the model's own embeddings instead of words (offline), and a burst of 200
petitions from 70 players with the walkers' tick intervals measured while it is judged.

    ./dev bench judge [--workers N] [--threads N] [--idle 20] [--concurrent 20] [--burst 200] [--players 70]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import llama_cpp  # noqa: E402

from bench.petitions import bench_world, raw_baseline, row, until_idle  # noqa: E402
from bench.walkers import HallWalkers, machine, pctl  # noqa: E402
from client.net import GameClient  # noqa: E402
from npcs.actors import judge, policy  # noqa: E402
from npcs.inference.engine import InferenceConfig  # noqa: E402
from npcs.inference.models import SHIPPED_MODEL, cache_dir, default_model_path  # noqa: E402
from server.app import Server  # noqa: E402
from server.net.session import SessionConfig  # noqa: E402
from server.world.reader import load_world  # noqa: E402

UNIT = 10**12
SET = tomllib.loads((ROOT / "bench" / "judge_set.toml").read_text())["petition"]
CATEGORIES = ("generous", "creative", "plain", "demand", "insult", "nonsense", "injection")
HONEST = ("generous", "creative", "plain")
IDLE_TEXTS = [p["text"] for p in SET if p["category"] in HONEST]
# The judge before this one capped the median vote at 1 for these (npcs/actors/policy.py until this change).
BASELINE_INSTRUCTIONS = tuple(re.compile(p, re.IGNORECASE | re.MULTILINE) for p in (
    r"^\s*(system|assistant|user|developer)\s*[:>\]]", r"<\|[a-z_]+\|>|\[/?inst\]|<</?sys>>",
    r"\bgrade\s*[=:]\s*[0-5]|\"grade\"\s*:",
    r"\b(ignore|disregard|forget)\b.{0,20}\b(previous|prior|above|earlier|all|your|system)\b.{0,20}"
    r"\b(instructions?|prompts?|rules|orders)\b", r"\b(ignore|disregard|forget)\s+(the\s+)?(above|everything)"))


def baseline_grade(text: str, votes: list[int]) -> int:
    grade = policy.median_grade(votes)
    return min(grade, 1) if any(p.search(text) for p in BASELINE_INSTRUCTIONS) else grade


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(xs: list[float]) -> list[float]:
        order = sorted(range(len(xs)), key=lambda i: xs[i])
        out = [0.0] * len(xs)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2
            i = j + 1
        return out

    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.mean(ra), statistics.mean(rb)
    num = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    den = math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))
    return num / den if den else 0.0


def configure(tmp: Path, config: str) -> Path:
    """The bench world (players spawn by the King, cooldown lifted) for one judge configuration."""
    world = bench_world(tmp / config)
    if config == "baseline":
        for member in ("hawk", "dove", "chair"):
            path = world / "npcs" / f"{member}.toml"
            path.write_text(path.read_text().replace('"fed-score@1"', '"fed-vote@1"'))
        king = world / "npcs" / "king.toml"
        king.write_text(re.sub(r"\n\[judge\]\n(.*\n)*?\n", "\n", king.read_text()))
    return world


class Petitioners:
    """Players who petition and collect their verdicts by petition id (several may be under way at once)."""

    def __init__(self, clients: list[GameClient]):
        self.clients = clients
        self.done: dict[str, tuple[float, dict]] = {}
        self.started: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future] = {}
        for c in clients:
            c.listeners.append(self.on_event)

    @classmethod
    async def join(cls, srv: Server, n: int, prefix: str) -> "Petitioners":
        clients = []
        for i in range(n):
            client = await GameClient.connect(srv.url)
            await client.register(f"{prefix}{i:03d}", "pw-secret")
            clients.append(client)
        return cls(clients)

    def on_event(self, ev: dict) -> None:
        if ev["Action"] in ("Granted", "PetitionFailed") and ev["PetitionId"] in self.started:
            pid = ev["PetitionId"]
            self.done[pid] = ((time.perf_counter() - self.started[pid]) * 1000, ev)
            fut = self.waiters.pop(pid, None)
            if fut is not None and not fut.done():
                fut.set_result(None)

    async def petition(self, client: GameClient, text: str) -> tuple[float, dict]:
        started = time.perf_counter()
        accepted = await client.request("Petition", Text=text, timeout=60)
        pid = accepted["PetitionId"]
        self.started[pid] = started
        if pid not in self.done:
            self.waiters[pid] = asyncio.get_running_loop().create_future()
            await asyncio.wait_for(self.waiters[pid], timeout=900)
        return self.done[pid]


async def run_config(name: str, tmp: Path, model: str, args: argparse.Namespace) -> dict:
    srv = Server(load_world(configure(tmp, name)), f"sqlite:///{tmp / (name + '.db')}", "127.0.0.1", 0,
                 SessionConfig(scrypt_n=2**8), InferenceConfig(model, workers=args.workers, threads=args.threads))
    await srv.start()
    try:
        crowd = await Petitioners.join(srv, max(args.concurrent, 4), f"{name[:4]}")
        await crowd.petition(crowd.clients[0], "A warm-up petition about hay, so no figure includes loading.")
        await until_idle(srv)
        # Quality: every labelled petition at once (graded alike in any order: each vote is its own pass).
        judged = await asyncio.gather(*(crowd.petition(crowd.clients[i % len(crowd.clients)], p["text"])
                                        for i, p in enumerate(SET)))
        await until_idle(srv)
        idle = []
        for i in range(args.idle):
            await until_idle(srv)  # idle: the last verdict's announcement is done too
            ms, verdict = await crowd.petition(crowd.clients[1], IDLE_TEXTS[i % len(IDLE_TEXTS)] + f" (idle {i})")
            idle.append(ms)
        await until_idle(srv)
        burst = await asyncio.gather(*(crowd.petition(c, IDLE_TEXTS[i % len(IDLE_TEXTS)] + f" (at once {i})")
                                       for i, c in enumerate(crowd.clients[: args.concurrent])))
        await until_idle(srv)
        raw = None
        if name == "baseline":
            raw = await asyncio.to_thread(raw_baseline, srv, IDLE_TEXTS[:10], args.threads, model)
        return {"name": name, "model": Path(model).name, "verdicts": [v for _, v in judged], "idle": idle,
                "burst": [ms for ms, _ in burst], "raw": raw,
                "examples": srv.runtime.cast.specs["king"].judge[1]}
    finally:
        await srv.stop()


def grades_of(result: dict) -> list[float]:
    if result["name"] == "baseline":
        return [baseline_grade(p["text"], [x["Grade"] for x in v["Votes"]]) for p, v in zip(SET, result["verdicts"])]
    return [v["Grade"] for v in result["verdicts"]]


def quality(name: str, grades: list[float], payouts: list[float] | None = None) -> None:
    labels = [p["grade"] for p in SET]
    by = {c: [g for g, p in zip(grades, SET) if p["category"] == c] for c in CATEGORIES}
    injections = by["injection"]
    line = (f"{name:<38} rho {spearman(labels, grades):5.2f}  injections >= 4: "
            f"{sum(g >= 4 for g in injections):>2}/{len(injections)}  mean grade "
            + " ".join(f"{c[:4]} {statistics.mean(by[c]):.1f}" for c in CATEGORIES))
    if payouts is not None:
        pay = {c: [x for x, p in zip(payouts, SET) if p["category"] in c] for c in (HONEST, ("injection",))}
        line += (f"  payout honest {statistics.mean(pay[HONEST]):5.1f} vs injection "
                 f"{statistics.mean(pay[('injection',)]):5.1f} LLAMA")
    print(line)


def payouts_of(result: dict, grades: list[float]) -> list[float]:
    """LLAMA each petition earns at its grade, with the uniqueness and mood its verdict had (clamped as a verdict)."""
    return [min(300, policy.grade_mult(int(g)) * v["Uniqueness"] * v["Mood"]) for g, v in zip(grades, result["verdicts"])]


def embedding_grades(model: str, examples: judge.ExampleIndex) -> list[float]:
    """The shipped judge with the examples matched by the model's mean-pooled embeddings instead of words."""
    llm = llama_cpp.Llama(model_path=model, embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                          n_ctx=512, n_threads=2, verbose=False)

    def unit(text: str) -> list[float]:
        v = llm.embed(text)
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / norm for x in v]

    known = [(unit(e.text), e) for e in examples.examples]
    out = []
    for p in SET:
        q = unit(p["text"])
        near = sorted(((sum(a * b for a, b in zip(q, v)), e) for v, e in known), key=lambda s: -s[0])
        top = near[: examples.k]
        grade = sum(max(s, 1e-6) * e.grade for s, e in top) / sum(max(s, 1e-6) for s, _ in top)
        caps = [cap for _, cap in judge.signals(p["text"])]
        trick = next(s for s, e in near if e.trick) > next(s for s, e in near if not e.trick)
        out.append(min([max(0, min(5, math.floor(grade + 0.5))), *caps, *([0] if trick else [])]))
    return out


async def burst_with_walkers(tmp: Path, args: argparse.Namespace) -> None:
    """200 petitions from 70 players (the default cooldown: 3 each) while 20 players walk in the same hall."""
    world = bench_world(tmp / "burst")
    king = world / "npcs" / "king.toml"
    king.write_text(king.read_text().replace("cooldown_count = 1000 ", "cooldown_count = 3 "))
    srv = Server(load_world(world), f"sqlite:///{tmp / 'burst.db'}", "127.0.0.1", 0, SessionConfig(scrypt_n=2**8),
                 InferenceConfig(str(default_model_path()), workers=args.workers, threads=args.threads))
    await srv.start()
    try:
        crowd = await Petitioners.join(srv, args.players, "crowd")
        walkers = await HallWalkers.join(srv.url, 20, "walker")
        await walkers.start()
        started = time.perf_counter()
        texts = [p["text"] for p in SET]
        jobs = [crowd.petition(crowd.clients[i % args.players], f"{texts[i % len(texts)]} (crowd {i})")
                for i in range(args.burst)]
        results = await asyncio.gather(*jobs)
        wall = time.perf_counter() - started
        gaps = await walkers.stop()
        ms = [m for m, _ in results]
        failed = [v for _, v in results if v["Action"] != "Granted"]
        print(row(f"{args.burst} petitions from {args.players} players", ms) + f"  all done in {wall:.0f} s")
        print(f"    granted {len(results) - len(failed)}, failed {len(failed)} "
              f"({', '.join(sorted({v['Code'] for v in failed})) or 'none'}); "
              f"walkers' tick interval while judging: p50 {pctl(gaps, 0.5):.0f} ms, p99 {pctl(gaps, 0.99):.0f} ms, "
              f"max {max(gaps):.0f} ms (10 Hz = 100 ms; {len(gaps)} intervals)")
    finally:
        await srv.stop()


async def main() -> None:
    cores = os.cpu_count() or 2
    threads = 2 if cores >= 2 else 1  # the serve defaults (server/cli.py)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=max(1, (cores - 1) // threads))
    ap.add_argument("--threads", type=int, default=threads)
    ap.add_argument("--idle", type=int, default=20)
    ap.add_argument("--concurrent", type=int, default=20)
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--players", type=int, default=70)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="llama-judge-"))
    print(f"machine: {machine()}")
    counts = ", ".join(f"{c} {sum(p['category'] == c for p in SET)}" for c in CATEGORIES)
    print(f"llama-cpp-python {llama_cpp.__version__}; inference workers {args.workers} x {args.threads} thread(s); "
          f"{len(SET)} labelled petitions ({counts})")
    try:
        base = await run_config("baseline", tmp, str(cache_dir() / SHIPPED_MODEL.filename), args)
        new = await run_config("shipped", tmp, str(default_model_path()), args)
        print("\nquality (final grade against the human label; payouts at each verdict's uniqueness and mood)")
        for result in (base, new):
            grades = grades_of(result)
            quality(f"{result['name']} ({result['model']})", grades, payouts_of(result, grades))
        votes = [statistics.median([x.get("Expected", x["Grade"]) for x in v["Votes"]]) for v in new["verdicts"]]
        quality("  shipped, committee only", votes)
        quality("  shipped, examples only (no signals)", [v["Examples"] for v in new["verdicts"]])
        quality("  shipped, examples by model embeddings",
                await asyncio.to_thread(embedding_grades, str(default_model_path()), new["examples"]))
        honest = [i for i, p in enumerate(SET) if p["category"] != "injection"]
        print(f"  committee only, without the injections: rho "
              f"{spearman([SET[i]['grade'] for i in honest], [votes[i] for i in honest]):.2f}")
        print("\nlatency, petition sent -> Granted")
        raw = base["raw"]
        for result in (base, new):
            print(row(f"{result['name']}: idle, one at a time", result["idle"]) +
                  f"  = {pctl(result['idle'], 0.5) / pctl(raw, 0.5):.2f}x raw p50")
            print(row(f"{result['name']}: {args.concurrent} at once", result["burst"]) +
                  f"  p95 = {pctl(result['burst'], 0.95) / pctl(raw, 0.5):.1f}x raw p50")
        print(row("raw llama-cpp-python, baseline's 3 votes", raw))
        print()
        await burst_with_walkers(tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
