"""The inference engine: a pool of supervised worker processes behind one bounded priority queue.

Every worker holds the same model (one copy per worker process, shared by every NPC: memory does not grow with
NPCs). A job waits in the queue, runs on the next free worker, and comes back with a receipt that is stored
before the caller sees the answer. A crashed worker is restarted and its job queued once more (first in line, for
whichever worker is free next); a job that times out or fails twice fails for its caller, who refunds whoever paid
(the herd's job). Workers in other processes (npcs/inference/remote.py) join and leave the pool while it runs;
they take jobs from the same queue, in the same order, as the local ones.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from server.core.db import Database, InferenceReceipt

from npcs.inference.models import check_model
from npcs.inference.receipts import make_receipt, seed_for
from npcs.inference.templates import PromptTemplate
from npcs.inference.worker import PERSONA_STATES, JobFailed, WorkerCrashed, WorkerProcess
from server.core.protocol import Code

log = logging.getLogger("llama_land.engine")


class QueueFull(JobFailed):
    pass


@dataclass(frozen=True)
class InferenceConfig:
    """How a server runs inference. Size workers x threads to the cores the game loop leaves free: llama.cpp's
    threads spin, and two processes that each claim every core slow each other down catastrophically."""

    model_path: str
    workers: int = 1
    threads: int = 1
    n_ctx: int = 2048
    queue_size: int = 64
    timeout: float = 30.0


@dataclass
class InferenceRequest:
    template: PromptTemplate
    values: dict[str, Any]
    requester: str
    request_id: str  # the message id of the request that caused it: the seed derives from it
    persona: str | None = None
    priority: int = 10  # lower runs first


@dataclass
class Inference:
    text: str
    receipt_id: str
    n_prompt: int
    n_output: int
    queue_ms: float
    ttft_ms: float
    gen_ms: float
    reused_tokens: int
    scores: dict[str, float] | None = None  # a scored answer: each choice's logit

    @property
    def tokens_per_second(self) -> float:
        return self.n_output / (self.gen_ms / 1000) if self.gen_ms > 0 else 0.0


@dataclass(order=True)
class _Queued:
    priority: int
    seq: int
    request: InferenceRequest = field(compare=False)
    job: dict[str, Any] = field(compare=False)
    future: asyncio.Future = field(compare=False)
    queued_at: float = field(compare=False)
    retried: bool = field(default=False, compare=False)


class PoolWorker(Protocol):
    """What the engine needs of a worker: a local `WorkerProcess` or a `RemoteWorker` (npcs/inference/remote.py)."""

    name: str
    restarts: int

    @property
    def busy(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def run(self, job: dict[str, Any], timeout: float) -> dict[str, Any]: ...


@dataclass
class EngineStats:
    jobs: int = 0
    failed: int = 0
    retried: int = 0
    queue_ms_sum: float = 0.0
    ttft_ms_sum: float = 0.0
    tokens_out: int = 0
    gen_ms_sum: float = 0.0
    scored: int = 0  # jobs answered by scoring their choices (no tokens generated)
    warm_picks: int = 0  # jobs taken out of turn (same priority) by a worker holding their persona's prefix


class InferenceEngine:
    def __init__(self, model_path: str, db: Database, workers: int = 1, threads: int = 1, n_ctx: int = 2048,
                 queue_size: int = 64, timeout: float = 30.0):
        self.model_path = str(model_path)
        self.model_sha256 = check_model(model_path)  # a clear start-up error names the path and expected hash
        self.db = db
        self.timeout, self.n_ctx = timeout, n_ctx
        self.queue: asyncio.PriorityQueue[_Queued] = asyncio.PriorityQueue(queue_size)
        self.workers: list[PoolWorker] = [WorkerProcess(self.model_path, threads, n_ctx, name=f"w{i}")
                                   for i in range(workers)]
        self.stats = EngineStats()
        self._seq = itertools.count()
        self._serving: dict[int, asyncio.Task] = {}  # id(worker) -> the task that feeds it
        self._idle: set[int] = set()  # id(worker) of feeding tasks that wait for a job (none taken yet)
        self.warm: dict[int, OrderedDict[str, None]] = {}  # id(worker) -> personas it ran lately (its saved ones)
        self.on_dequeue: Callable[[], None] | None = None  # called whenever a job leaves the queue for a worker

    async def start(self) -> None:
        await asyncio.gather(*(w.start() for w in self.workers))
        for worker in self.workers:
            self._serving[id(worker)] = asyncio.get_running_loop().create_task(self._serve(worker))

    def add_worker(self, worker: PoolWorker) -> None:
        """A started worker joins the pool (a remote one that announced itself with this engine's model)."""
        self.workers.append(worker)
        self._serving[id(worker)] = asyncio.get_running_loop().create_task(self._serve(worker))

    def remove_worker(self, worker: PoolWorker) -> None:
        """A worker leaves: its feeding task ends after the job it runs (a dead remote worker fails that job
        first, which goes back in the queue once)."""
        if worker in self.workers:
            self.workers.remove(worker)
        task = self._serving.pop(id(worker), None)
        if task is not None and id(worker) in self._idle:  # waiting for a job: nothing is lost by cancelling
            task.cancel()

    async def stop(self) -> None:
        tasks = list(self._serving.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._serving.clear()
        while not self.queue.empty():  # queued jobs fail now; their callers refund
            item = self.queue.get_nowait()
            if not item.future.done():
                item.future.set_exception(JobFailed(Code.SHUTDOWN, "the server is shutting down"))
        await asyncio.gather(*(w.stop() for w in self.workers))

    def position(self, request_id: str) -> int | None:
        """1-based place in the queue of a waiting request (None once it runs)."""
        waiting = sorted(self.queue._queue)  # type: ignore[attr-defined]
        return next((i + 1 for i, q in enumerate(waiting) if q.request.request_id == request_id), None)

    async def infer(self, request: InferenceRequest) -> Inference:
        future, _ = self.submit(request)
        return await future

    def submit(self, request: InferenceRequest) -> tuple[asyncio.Future, int]:
        """Queue a request; returns the future of its Inference and its 1-based place in the queue."""
        t = request.template
        job = {"messages": t.messages(**request.values), "max_tokens": t.max_tokens, "temperature": t.temperature,
               "top_k": t.top_k, "top_p": t.top_p, "seed": seed_for(request.request_id), "grammar": t.grammar,
               "persona": request.persona, "id": request.request_id, "answer_prefix": t.answer_prefix,
               "user_head": t.user_head}
        if t.choices:
            job.update(mode="score", choices=list(t.choices))
        future = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait(_Queued(request.priority, next(self._seq), request, job, future, time.perf_counter()))
        except asyncio.QueueFull:
            raise QueueFull(Code.QUEUE_FULL, f"the inference queue is full ({self.queue.maxsize} waiting)") from None
        return future, self.position(request.request_id) or 1

    @property
    def busy_workers(self) -> int:
        return sum(1 for w in self.workers if w.busy)

    def _warm_first(self, worker: PoolWorker, item: _Queued) -> _Queued:
        """Persona affinity: of the jobs as urgent as the next one, the oldest whose system prompt this worker
        holds saved (its prompt evaluation then starts after it), else the next one. Priority is never passed."""
        warm = self.warm.setdefault(id(worker), OrderedDict())
        heap = self.queue._queue  # type: ignore[attr-defined]
        chosen = warm_pick(item, heap, warm)
        if chosen is not item:
            heap.remove(chosen)
            heapq.heapify(heap)
            self.queue.put_nowait(item)  # the place it left (the queue just gave one up)
            self.stats.warm_picks += 1
        persona = chosen.request.persona
        if persona:
            warm[persona] = None
            warm.move_to_end(persona)
            while len(warm) > PERSONA_STATES:
                warm.popitem(last=False)
        return chosen

    async def _serve(self, worker: PoolWorker) -> None:
        while worker in self.workers:
            self._idle.add(id(worker))
            try:
                item = await self.queue.get()
            finally:
                self._idle.discard(id(worker))
            if worker not in self.workers:  # it left while this job was handed to it: back, untried
                self.queue.put_nowait(item)
                return
            item = self._warm_first(worker, item)
            if self.on_dequeue is not None:
                self.on_dequeue()
            if item.future.done():  # the caller gave up
                continue
            queue_ms = (time.perf_counter() - item.queued_at) * 1000
            try:
                result = await self._run(worker, item.job)
            except asyncio.CancelledError:  # shutting down mid-job: the caller must hear, to refund
                if not item.future.done():
                    item.future.set_exception(JobFailed(Code.SHUTDOWN, "the server is shutting down"))
                raise
            except WorkerCrashed as exc:
                if not item.retried and not item.future.done():
                    # Once more, first in line, on whichever worker is free next (this one restarts if local).
                    self.stats.retried += 1
                    log.warning("worker %s failed on %s (%s); queued once more", worker.name, item.job["id"], exc)
                    item.retried = True
                    if self._requeue(item):
                        continue
                self.stats.failed += 1
                if not item.future.done():
                    item.future.set_exception(exc)
                continue
            except JobFailed as exc:
                self.stats.failed += 1
                if not item.future.done():
                    item.future.set_exception(exc)
                continue
            if item.job["grammar"] and result["finish"] != "stop":
                # A constrained answer cut off by max_tokens ("grade=" without its digit) is not an answer.
                self.stats.failed += 1
                if not item.future.done():
                    item.future.set_exception(JobFailed(
                        Code.INVALID_OUTPUT, f"the answer did not complete its grammar within {item.job['max_tokens']} "
                                          f"tokens: {result['text']!r}"))
                continue
            try:
                receipt = make_receipt(item.job, result, requester=item.request.requester,
                                       request_id=item.request.request_id, template_id=item.request.template.id,
                                       model_path=self.model_path, model_sha256=self.model_sha256, queue_ms=queue_ms)
                await self.db.submit(lambda session, r=receipt: store_once(session, r))
            except Exception as exc:  # a bug: fail this job, keep serving
                log.exception("inference job %s failed", item.job["id"])
                self.stats.failed += 1
                if not item.future.done():
                    item.future.set_exception(JobFailed(Code.INFERENCE_FAILED, str(exc)))
                continue
            s = self.stats
            s.jobs += 1
            s.queue_ms_sum += queue_ms
            s.ttft_ms_sum += result["ttft_ms"]
            if "scores" in result:  # scored: one forward pass, nothing generated (tokens/s counts generation)
                s.scored += 1
                log.info("job %s: queue %.0f ms, prompt %d tok (%d reused) scored in %.0f ms", item.job["id"],
                         queue_ms, len(result["prompt_tokens"]), result["reused_tokens"], result["ttft_ms"])
            else:
                s.tokens_out += len(result["output_tokens"])
                s.gen_ms_sum += result["gen_ms"]
                log.info("job %s: queue %.0f ms, prompt %d tok in %.0f ms, %d tok at %.0f tok/s", item.job["id"],
                         queue_ms, len(result["prompt_tokens"]), result["ttft_ms"], len(result["output_tokens"]),
                         len(result["output_tokens"]) / max(1e-9, result["gen_ms"] / 1000))
            if not item.future.done():
                item.future.set_result(Inference(result["text"], receipt.id, receipt.n_prompt, receipt.n_output,
                                                 queue_ms, result["ttft_ms"], result["gen_ms"], result["reused_tokens"],
                                                 result.get("scores")))

    async def _run(self, worker: PoolWorker, job: dict[str, Any]) -> dict[str, Any]:
        return await worker.run(job, self.timeout)

    def _requeue(self, item: _Queued) -> bool:
        """Back in the queue ahead of every job of its priority; False if the queue is full."""
        item.seq = -1 - item.seq
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True


def warm_pick(item: _Queued, waiting: list[_Queued], warm: "OrderedDict[str, None]") -> _Queued:
    """The job a worker takes: `item` (the queue's next), unless its persona is cold here and a job of the same
    priority waiting behind it has a warm one — then the oldest of those."""
    if item.request.persona in warm:
        return item
    same = [q for q in waiting if q.priority == item.priority and q.request.persona in warm]
    return min(same) if same else item


def store_once(session: Any, receipt: InferenceReceipt) -> None:
    """A receipt is written once per id: the same job with the same answer (a retry) finds it there."""
    if session.get(InferenceReceipt, receipt.id) is None:
        session.add(receipt)
