"""The herd: a priced market for NPC inference, with escrow.

A requester (an NPC service acting for a player) asks for a Quote — the fee is counted from the real prompt
tokens — then Runs it: the fee moves from the payer into escrow on the wAR ledger, the job joins the engine's
queue, and exactly one of two things happens: delivery settles the escrow to the herd's account, or any failure
(timeout, worker crash, validation, full queue, shutdown, a restart while it was queued) refunds it.

Pricing is the reference formula, fee = (base + per_token x (prompt_tokens + max_tokens)) x multiplier x
(1.005 if jobs are waiting), with one fix: the multiplier rises while jobs queue up and decays back toward 1
when the herd is idle (the original only ever rose). All times come from the messages.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from server.core.actors import Actor, Bus, Message, action
from server.economy.ledger import UNIT, change

from npcs.inference.engine import InferenceEngine, InferenceRequest
from npcs.inference.templates import PromptTemplate, TemplateError
from npcs.inference.renderer import PromptRenderer
from npcs.inference.worker import JobFailed
from server.core.protocol import Code

log = logging.getLogger("llama_land.herd")


@dataclass(frozen=True)
class HerdConfig:
    base_fee: int = UNIT // 1000  # 0.001 wAR per job ...
    token_fee: int = UNIT // 100_000  # ... plus 0.00001 wAR per prompt or output token
    rise: float = 1.02  # multiplier growth per job accepted while others wait
    max_multiplier: float = 5.0
    half_life_ms: int = 60_000  # idle time that halves the multiplier's distance to 1
    quote_ttl_ms: int = 30_000
    per_requester: int = 2  # jobs one payer may have queued or running
    token: str = "wAR"
    account: str = "herd"  # where settled fees go


@dataclass
class Pricing:
    config: HerdConfig
    multiplier: float = 1.0
    at_ms: int = 0

    def current(self, t_ms: int) -> float:
        idle = max(0, t_ms - self.at_ms)
        return 1.0 + (self.multiplier - 1.0) * 0.5 ** (idle / self.config.half_life_ms)

    def bump(self, t_ms: int) -> None:
        self.multiplier = min(self.config.max_multiplier, self.current(t_ms) * self.config.rise)
        self.at_ms = t_ms

    def fee(self, prompt_tokens: int, max_tokens: int, waiting: int, t_ms: int) -> int:
        c = self.config
        raw = (c.base_fee + c.token_fee * (prompt_tokens + max_tokens)) * self.current(t_ms)
        return math.ceil(raw * (1.005 if waiting else 1.0))


@dataclass
class Quote:
    id: str
    requester: str
    template: PromptTemplate
    values: dict[str, Any]
    persona: str | None
    prompt_tokens: int
    fee: int
    expires_ms: int


@dataclass
class HerdStats:
    settled: int = 0
    refunded: int = 0
    fees_settled: int = 0
    fees_refunded: int = 0
    refunds_by_reason: dict[str, int] = field(default_factory=dict)


class HerdActor(Actor):
    """Info, Quote and Run, answered to ReplyTo; each run's outcome (Herd-Done or Herd-Failed) goes to Notify."""

    def __init__(self, bus: Bus, engine: InferenceEngine, templates: dict[str, PromptTemplate],
                 config: HerdConfig | None = None, more_engines: dict[str, InferenceEngine] | None = None):
        """engine runs the world's model; more_engines (by model path) run templates that name their own."""
        super().__init__("herd")
        self.bus, self.engine, self.templates = bus, engine, templates
        self.engines = {engine.model_path: engine, **(more_engines or {})}
        self.config = config or HerdConfig()
        self.ledger = f"token:{self.config.token}"
        self.pricing = Pricing(self.config)
        self.renderers = {path: PromptRenderer.vocab_only(path) for path in self.engines}
        self.quotes: dict[str, Quote] = {}
        self.inflight: dict[str, int] = {}
        self.running: set[asyncio.Task] = set()
        self.queued: dict[str, tuple[str, InferenceEngine, int]] = {}  # request id -> (notify, engine, position)
        for e in self.engines.values():
            e.on_dequeue = self.report_positions
        self.stats = HerdStats()
        self.handle("info", action("Info"), self.on_info)
        self.handle("quote", action("Quote"), self.on_quote)
        self.handle("run", action("Run"), self.on_run)
        self.handle("submit", action("Submit"), self.on_submit)

    @property
    def waiting(self) -> int:
        return sum(e.queue.qsize() for e in self.engines.values())

    def model_of(self, template: PromptTemplate) -> str:
        return template.model or self.engine.model_path

    async def open(self, t: int) -> None:
        """After a restart: jobs that were paid for but never delivered are refunded, so no fee is lost."""
        reply = await self.bus.call(self.ledger, {"Action": "Escrows", "Prefix": "herd:", "T": t})
        for escrow_id in sorted(reply["Escrows"]):
            await self._refund(escrow_id, reply["Escrows"][escrow_id]["Amount"], "restart", t)

    def on_info(self, msg: Message) -> None:
        t = msg["T"]
        self.reply(msg, "Info-Done", Token=self.config.token, BaseFee=self.config.base_fee,
                   TokenFee=self.config.token_fee, Multiplier=round(self.pricing.current(t), 6),
                   QueueLength=self.waiting, Running=sum(e.busy_workers for e in self.engines.values()),
                   QuoteTTL=self.config.quote_ttl_ms)

    async def on_quote(self, msg: Message) -> None:
        t = msg["T"]
        template = self.templates.get(msg["Template"])
        if template is None:
            self.refuse(msg, Code.UNKNOWN_TEMPLATE, f"no prompt template {msg['Template']!r}")
            return
        try:
            messages = template.messages(**msg["Values"])
        except TemplateError as exc:
            self.refuse(msg, Code.BAD_REQUEST, str(exc))
            return
        model = self.model_of(template)
        prompt_tokens = await asyncio.to_thread(self.renderers[model].count, messages)
        n_ctx = self.engines[model].n_ctx
        if prompt_tokens + template.max_tokens > n_ctx:
            self.refuse(msg, Code.PROMPT_TOO_LONG, f"prompt is {prompt_tokens} tokens; with "
                                                          f"{template.max_tokens} to generate it exceeds {n_ctx}")
            return
        fee = self.pricing.fee(prompt_tokens, template.max_tokens, self.waiting, t)
        qid = "q-" + hashlib.sha256(f"{msg['Requester']}|{t}|{len(self.quotes)}|{fee}".encode()).hexdigest()[:16]
        self.quotes = {k: q for k, q in self.quotes.items() if q.expires_ms > t}  # forget expired quotes
        self.quotes[qid] = Quote(qid, msg["Requester"], template, dict(msg["Values"]), msg.get("Persona"),
                                 prompt_tokens, fee, t + self.config.quote_ttl_ms)
        self.reply(msg, "Quote-Done", QuoteId=qid, Fee=fee, Token=self.config.token, PromptTokens=prompt_tokens,
                   MaxTokens=template.max_tokens, ExpiresAt=t + self.config.quote_ttl_ms)

    async def on_run(self, msg: Message) -> None:
        t, requester = msg["T"], msg["Requester"]
        quote = self.quotes.get(msg["QuoteId"])
        if quote is None or quote.requester != requester:
            self.refuse(msg, Code.UNKNOWN_QUOTE, "no such quote for this requester (used or never given)")
            return
        if t > quote.expires_ms:
            del self.quotes[quote.id]
            self.refuse(msg, Code.QUOTE_EXPIRED, "the quote has expired; ask for a new one")
            return
        if self.inflight.get(requester, 0) >= self.config.per_requester:
            self.refuse(msg, Code.TOO_MANY_JOBS, f"at most {self.config.per_requester} jobs at a time")
            return
        if msg["RequestId"] in self.queued:  # a Hold with its escrow id would be answered as a retry
            self.refuse(msg, Code.DUPLICATE_ESCROW, f"request {msg['RequestId']} is already running")
            return
        escrow = f"herd:{msg['RequestId']}"
        held = await change(self.bus, self.config.token, {"Action": "Hold", "Escrow": escrow, "From": msg["Payer"],
                                                          "Amount": quote.fee, "For": f"herd:{quote.template.id}",
                                                          "T": t}, fresh=True)
        if held["Action"] == "Error":  # insufficient funds, or a request id used before: nothing taken
            self.refuse(msg, held["Code"], held["Message"])
            return
        del self.quotes[quote.id]
        await self._enqueue(msg, quote.template, quote.values, quote.persona, escrow, quote.fee)

    async def on_submit(self, msg: Message) -> None:
        """A job the world itself pays for (the Fed's committee, a wandering llama's answer): no quote, no fee,
        no escrow. Only actors inside the server can send it; players reach the herd through NPCs only. Priority
        (lower first; paid jobs run at 10) lets a verdict's votes pass the King's announcement of the last one."""
        template = self.templates.get(msg["Template"])
        if template is None:
            self.refuse(msg, Code.UNKNOWN_TEMPLATE, f"no prompt template {msg['Template']!r}")
            return
        try:
            template.messages(**msg["Values"])
        except TemplateError as exc:
            self.refuse(msg, Code.BAD_REQUEST, str(exc))
            return
        await self._enqueue(msg, template, dict(msg["Values"]), msg.get("Persona"), None, 0)

    async def _enqueue(self, msg: Message, template: PromptTemplate, values: dict[str, Any], persona: str | None,
                       escrow: str | None, fee: int) -> None:
        t, requester = msg["T"], msg["Requester"]
        if persona is None:  # jobs whose system prompts are equal share one saved prefix, whoever asks
            system = template.messages(**values)[0]["content"]
            persona = f"{template.id}:{hashlib.sha256(system.encode()).hexdigest()[:12]}"
        request = InferenceRequest(template, values, requester, msg["RequestId"], persona,
                                   priority=msg.get("Priority", 10))
        engine = self.engines[self.model_of(template)]
        try:
            future, position = engine.submit(request)
        except JobFailed as exc:
            if escrow is not None:
                await self._refund(escrow, fee, exc.code, t)
            self.refuse(msg, exc.code, exc.message)
            return
        if self.waiting > 1:
            self.pricing.bump(t)
        self.inflight[requester] = self.inflight.get(requester, 0) + 1
        self.queued[msg["RequestId"]] = (msg["Notify"], engine, position)
        self.reply(msg, "Run-Accepted", RequestId=msg["RequestId"], Escrow=escrow, Fee=fee, Position=position)
        task = asyncio.get_running_loop().create_task(self._deliver(msg, fee, escrow, future))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    def report_positions(self) -> None:
        """A job left a queue: tell each waiting requester its new place (Herd-Queued), and the one whose job
        reached a worker that it is running (Herd-Started) — what a client shows as "thinking… (3rd in line)"."""
        for request_id, (notify, engine, last) in list(self.queued.items()):
            position = engine.position(request_id)
            if position is None:
                del self.queued[request_id]
                self.bus.send(notify, {"Action": "Herd-Started", "RequestId": request_id})
            elif position != last:
                self.queued[request_id] = (notify, engine, position)
                self.bus.send(notify, {"Action": "Herd-Queued", "RequestId": request_id, "Position": position})

    async def _deliver(self, msg: Message, fee: int, escrow: str | None, future: asyncio.Future) -> None:
        notify, requester = msg["Notify"], msg["Requester"]
        try:
            result = await future
        except JobFailed as exc:
            if escrow is not None:
                await self._refund(escrow, fee, exc.code, msg["T"])
            self.bus.send(notify, {"Action": "Herd-Failed", "RequestId": msg["RequestId"], "Code": exc.code,
                                   "Message": exc.message, "Refunded": fee})
            return
        finally:
            self.inflight[requester] -= 1
            self.queued.pop(msg["RequestId"], None)
        if escrow is not None:
            settled = await change(self.bus, self.config.token, {"Action": "Settle", "Escrow": escrow,
                                                                 "To": self.config.account, "T": msg["T"]})
            if settled["Action"] == "Error":  # cannot happen while the herd alone closes its escrows: say so loudly
                log.error("settling %s failed: %s", escrow, settled["Message"])
            self.stats.settled += 1
            self.stats.fees_settled += fee
        self.bus.send(notify, {"Action": "Herd-Done", "RequestId": msg["RequestId"], "Text": result.text,
                               "ReceiptId": result.receipt_id, "Fee": fee, "QueueMs": round(result.queue_ms),
                               "TtftMs": round(result.ttft_ms), "TokensPerSecond": round(result.tokens_per_second, 1),
                               **({"Scores": result.scores} if result.scores is not None else {})})

    async def _refund(self, escrow: str, amount: int, reason: str, t: int) -> None:
        done = await change(self.bus, self.config.token, {"Action": "Refund", "Escrow": escrow, "Reason": reason,
                                                          "T": t})
        if done["Action"] == "Error":  # already closed: never refund twice
            log.warning("refund of %s skipped: %s", escrow, done["Message"])
            return
        self.stats.refunded += 1
        self.stats.fees_refunded += amount
        self.stats.refunds_by_reason[reason] = self.stats.refunds_by_reason.get(reason, 0) + 1

    async def drain(self) -> None:
        """At shutdown: the engine fails what is queued, and every such job is refunded before we return."""
        await asyncio.gather(*(e.stop() for e in self.engines.values()))
        if self.running:
            await asyncio.gather(*self.running, return_exceptions=True)
