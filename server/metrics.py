"""Counters and gauges, rendered in the Prometheus text format at /metrics."""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any, Callable

from server.core.clock import now_ms

GaugeSource = Callable[[], list[str]]

TICK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                return
        self.counts[-1] += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out, running = [], 0
        for bound, n in zip((*self.buckets, float("inf")), self.counts):
            running += n
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            out.append(f'{name}_bucket{{{labels},le="{le}"}} {running}')
        out.append(f"{name}_sum{{{labels}}} {self.sum:.6f}")
        out.append(f"{name}_count{{{labels}}} {self.count}")
        return out


class Metrics:
    def __init__(self) -> None:
        self.messages_in = 0
        self.frames_out = 0
        self.slow_clients = 0
        self.ticks_skipped = 0
        self.connections_total = 0
        self.errors: Counter[str] = Counter()
        self.ticks: dict[str, Histogram] = {}
        self.tick_frames: Counter[str] = Counter()
        self._samples: deque[tuple[float, int]] = deque(maxlen=11)
        self.sources: list[GaugeSource] = []

    def observe_tick(self, room: str, seconds: float, frames: int) -> None:
        hist = self.ticks.get(room)
        if hist is None:
            hist = self.ticks[room] = Histogram(TICK_BUCKETS)
        hist.observe(seconds)
        self.tick_frames[room] += frames

    def sample(self) -> None:
        """Called once a second; messages/s is the rate over the last ten seconds."""
        self._samples.append((time.monotonic(), self.messages_in))

    def messages_per_second(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def add_source(self, source: "GaugeSource") -> None:
        """A function that returns metric lines when /metrics is read (the runtime's rooms, ledgers, herd...)."""
        self.sources.append(source)

    def render(self) -> str:
        lines = [
            "# TYPE llama_land_connections_total counter",
            f"llama_land_connections_total {self.connections_total}",
            "# TYPE llama_land_messages_received_total counter",
            f"llama_land_messages_received_total {self.messages_in}",
            "# HELP llama_land_messages_per_second Requests received per second, over the last ten seconds.",
            "# TYPE llama_land_messages_per_second gauge",
            f"llama_land_messages_per_second {self.messages_per_second():.1f}",
            "# TYPE llama_land_frames_sent_total counter",
            f"llama_land_frames_sent_total {self.frames_out}",
            "# TYPE llama_land_slow_clients_dropped_total counter",
            f"llama_land_slow_clients_dropped_total {self.slow_clients}",
            "# TYPE llama_land_ticks_skipped_total counter",
            f"llama_land_ticks_skipped_total {self.ticks_skipped}",
            "# TYPE llama_land_errors_total counter",
            *(f'llama_land_errors_total{{code="{code}"}} {n}' for code, n in sorted(self.errors.items())),
            "# HELP llama_land_tick_seconds Time a room spends building and sending one tick.",
            "# TYPE llama_land_tick_seconds histogram",
        ]
        for room, hist in sorted(self.ticks.items()):
            lines += hist.lines("llama_land_tick_seconds", f'room="{room}"')
        for source in self.sources:
            lines += source()
        return "\n".join(lines) + "\n"


def gauge(name: str, value: object, help_text: str = "", kind: str = "gauge") -> list[str]:
    head = [f"# HELP llama_land_{name} {help_text}"] if help_text else []
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return [*head, f"# TYPE llama_land_{name} {kind}", f"llama_land_{name} {shown}"]


def world_lines(rooms: dict[str, Any], actors: list[Any], db: Any, log: Any) -> list[str]:
    """Players and rooms, every actor's mailbox, the database writer and the log."""
    lines = gauge("players", sum(len(r.avatars) for r in rooms.values()),
                  "Players in the world (including those within their reconnect grace).")
    lines += gauge("rooms", len(rooms))
    lines += ["# HELP llama_land_mailbox_depth Messages waiting in an actor's mailbox.",
              "# TYPE llama_land_mailbox_depth gauge"]
    lines += [f'llama_land_mailbox_depth{{actor="{a.id}"}} {a.mailbox.qsize()}' for a in actors]
    lines += gauge("db_queue_depth", db.queue_depth, "Writes waiting for the database writer thread.")
    lines += gauge("log_appends_total", log.appended, kind="counter")
    lines += gauge("db_commits_total", db.commits, kind="counter")
    return lines


def market_lines(market: Any) -> list[str]:
    """The market: open orders by side, fills and their volume since start, the last price, and ledger changes the
    log owes but the ledgers have not confirmed yet (should be near zero; growing means a ledger is unreachable)."""
    sides = {"buy": 0, "sell": 0}
    for o in market.state.orders.values():
        sides[o["Side"]] += 1
    return ["# HELP llama_land_market_open_orders Open orders on the market, by side.",
            "# TYPE llama_land_market_open_orders gauge",
            *(f'llama_land_market_open_orders{{side="{k}"}} {n}' for k, n in sorted(sides.items())),
            *gauge("market_fills_total", market.fills, "Fills since this process started.", "counter"),
            *gauge("market_volume_total", market.volume, "LLAMA traded since this process started, base units.",
                   "counter"),
            *gauge("market_last_price", market.state.last_price or 0, "The last trade's price: wAR base units per "
                                                                     "LLAMA."),
            *gauge("market_owed_changes", len(market.state.owed), "Ledger changes logged but not yet confirmed.")]


def fed_lines(fed: Any) -> list[str]:
    """The Fed's books: petitions by status, and LLAMA minted by verdicts (all from its logged state)."""
    state = fed.state
    statuses: dict[str, int] = {}
    for p in state.petitions.values():
        statuses[p["Status"]] = statuses.get(p["Status"], 0) + 1
    minted = sum(p.get("Payout", 0) for p in state.petitions.values() if p["Status"] == "granted")
    return ["# HELP llama_land_petitions Petitions to the Llama King, by status.",
            "# TYPE llama_land_petitions gauge",
            *(f'llama_land_petitions{{status="{k}"}} {n}' for k, n in sorted(statuses.items())),
            "# HELP llama_land_fed_minted_total LLAMA minted by verdicts, in base units.",
            "# TYPE llama_land_fed_minted_total counter", f"llama_land_fed_minted_total {minted}"]


def inference_lines(herd: Any) -> list[str]:
    engines = list(herd.engines.values())
    h = herd.stats
    total = lambda attr: sum(getattr(e.stats, attr) for e in engines)  # noqa: E731
    metric = [
        ("inference_jobs_total", "counter", "Inference jobs completed.", total("jobs")),
        ("inference_failed_total", "counter", "Inference jobs that failed (and were refunded).", total("failed")),
        ("inference_retried_total", "counter", "Jobs retried after their worker crashed.", total("retried")),
        ("inference_queue_depth", "gauge", "Jobs waiting for a worker.", sum(e.queue.qsize() for e in engines)),
        ("inference_workers_busy", "gauge", "Workers running a job.", sum(e.busy_workers for e in engines)),
        ("inference_workers", "gauge", "Workers in the pool, local and remote.", sum(len(e.workers) for e in engines)),
        ("inference_workers_remote", "gauge", "Workers on other processes (llama-land worker over NATS).",
         sum(1 for e in engines for w in e.workers if w.name.startswith("remote:"))),
        ("inference_warm_picks_total", "counter", "Jobs taken out of turn (same priority) by a worker holding their "
                                                  "persona's saved prefix.", total("warm_picks")),
        ("inference_worker_restarts_total", "counter", "Workers replaced after a crash or hang.",
         sum(w.restarts for e in engines for w in e.workers)),
        ("inference_queue_wait_seconds_total", "counter", "Time jobs spent queued.", total("queue_ms_sum") / 1000),
        ("inference_prompt_eval_seconds_total", "counter", "Time to first token, summed.", total("ttft_ms_sum") / 1000),
        ("inference_generated_tokens_total", "counter", "Tokens generated.", total("tokens_out")),
        ("inference_generation_seconds_total", "counter", "Time spent generating after the first token.",
         total("gen_ms_sum") / 1000),
        ("herd_multiplier", "gauge", "The herd's current price multiplier.", herd.pricing.current(now_ms())),
        ("herd_settled_total", "counter", "Paid jobs delivered and settled.", h.settled),
        ("herd_fees_settled_total", "counter", "Fees settled, in base units.", h.fees_settled),
        ("herd_fees_refunded_total", "counter", "Fees refunded, in base units.", h.fees_refunded),
    ]
    out = []
    for name, kind, help_text, value in metric:
        out += [f"# HELP llama_land_{name} {help_text}", f"# TYPE llama_land_{name} {kind}",
                f"llama_land_{name} {value:g}" if isinstance(value, float) else f"llama_land_{name} {value}"]
    out += ["# HELP llama_land_herd_refunded_total Paid jobs refunded, by reason.",
            "# TYPE llama_land_herd_refunded_total counter"]
    out += [f'llama_land_herd_refunded_total{{reason="{r}"}} {n}' for r, n in sorted(h.refunds_by_reason.items())]
    return out
