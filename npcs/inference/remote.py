"""Inference workers in other processes, on any machine, over the NATS bus.

`llama-land worker --nats URL` runs one supervised llama.cpp worker (the same `WorkerProcess` a server runs
locally) behind an actor `worker:<id>`, and announces itself every second to `workers` — the server's
`WorkerRegistry` — with its model's sha256, its llama.cpp build and its threads. The registry refuses a worker
whose model or build differs from the world's (a receipt must re-run to the same tokens under `llama-land
verify`); a matching one joins the engine's pool as a `RemoteWorker` and takes jobs from the same queue, in the same
priority order, as a local worker. A worker that misses three announcements is dead: the job it was running fails
with WORKER_CRASHED, which the engine queues once more for another worker, then fails for good (and the herd
refunds). A worker has no database: the server stores the receipt of what it answered.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from typing import Any

from npcs.inference.models import check_model
from npcs.inference.worker import JobFailed, WorkerCrashed, WorkerProcess
from server.core.actors import Actor, Bus, Message, action
from server.core.clock import now_ms
from server.core.lease import process_id
from server.core.protocol import Code

log = logging.getLogger("llama_land.remote")

HEARTBEAT_S = 1.0
MISSED = 3  # announcements a worker may miss before it counts as dead


class RemoteWorker:
    """The engine's handle on a worker in another process: `run` is a call to its actor."""

    def __init__(self, bus: Bus, hello: Message):
        self.bus, self.worker_id = bus, hello["Id"]
        self.name = f"remote:{hello['Id']}"
        self.build, self.threads, self.n_ctx = hello["Build"], hello["Threads"], hello["NCtx"]
        self.host = hello.get("Host", "?")
        self.busy = False
        self.restarts = 0
        self.jobs = 0
        self.dead = asyncio.Event()
        self.seen = asyncio.get_running_loop().time()

    async def start(self) -> None:  # started by its own process
        pass

    async def stop(self) -> None:
        pass

    async def run(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self.dead.is_set():
            raise WorkerCrashed(Code.WORKER_CRASHED, f"inference worker {self.name} is gone")
        self.busy, self.jobs = True, self.jobs + 1
        call = asyncio.ensure_future(self.bus.call(f"worker:{self.worker_id}", {"Action": "Run", "Job": job,
                                                                               "Timeout": timeout}, timeout + 5))
        died = asyncio.ensure_future(self.dead.wait())
        try:
            await asyncio.wait({call, died}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            died.cancel()
            self.busy = False
        if not call.done():
            call.cancel()
            raise WorkerCrashed(Code.WORKER_CRASHED, f"inference worker {self.name} stopped answering mid-job")
        try:
            answer = call.result()
        except (LookupError, TimeoutError) as exc:  # gone, or stalled: the engine tries the job once more
            raise WorkerCrashed(Code.WORKER_CRASHED, f"inference worker {self.name}: {exc}") from None
        if answer["Action"] == "Error" and answer["Code"] in (Code.WORKER_TIMEOUT, Code.WORKER_CRASHED):
            raise WorkerCrashed(answer["Code"], answer["Message"])  # stalled or crashed there: once more, elsewhere
        if answer["Action"] == "Error":
            raise JobFailed(answer["Code"], answer["Message"])
        return answer["Result"]


class WorkerRegistry(Actor):
    """`workers`: remote workers announce themselves here; it admits, refuses and retires them."""

    def __init__(self, bus: Bus, engines: list[Any], build: dict[str, str]):
        super().__init__("workers")
        self.bus, self.build = bus, build
        self.engines = {e.model_sha256: e for e in engines}
        self.remote: dict[str, tuple[RemoteWorker, Any]] = {}  # worker id -> (its handle, its engine)
        self.refused: dict[str, str] = {}  # worker id -> why (told once per announcement)
        self._sweep: asyncio.Task | None = None
        self.handle("hello", action("Worker-Hello"), self.on_hello)
        self.handle("bye", action("Worker-Bye"), self.on_bye)

    def start(self) -> None:
        super().start()
        self._sweep = asyncio.get_running_loop().create_task(self._sweep_dead(), name="workers-sweep")

    async def stop(self, drain_s: float = 2.0) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
        for worker_id in list(self.remote):
            self.retire(worker_id, "the server is stopping")
        await super().stop(drain_s)

    def why_not(self, msg: Message) -> str | None:
        if msg["Model"] not in self.engines:
            wanted = ", ".join(f"{e.model_path} ({sha[:12]}…)" for sha, e in self.engines.items())
            return f"its model {msg.get('ModelFile', '?')} ({msg['Model'][:12]}…) is not this world's: {wanted}"
        if msg["Build"] != self.build:
            return (f"its llama.cpp build differs from the server's (receipts would not verify): "
                    f"{msg['Build'].get('llama_cpp_python')} vs {self.build.get('llama_cpp_python')}, "
                    f"{msg['Build'].get('system', '')[:80]!r} vs {self.build.get('system', '')[:80]!r}")
        return None

    def on_hello(self, msg: Message) -> None:
        worker_id = msg["Id"]
        known = self.remote.get(worker_id)
        if known is not None:
            known[0].seen = asyncio.get_running_loop().time()
            return
        why = self.why_not(msg)
        if why is not None:
            if self.refused.get(worker_id) != why:
                log.warning("refused inference worker %s on %s: %s", worker_id, msg.get("Host", "?"), why)
            self.refused[worker_id] = why
            self.bus.send(f"worker:{worker_id}", {"Action": "Worker-Refused", "Reason": why, "T": msg["T"]})
            return
        worker, engine = RemoteWorker(self.bus, msg), self.engines[msg["Model"]]
        self.remote[worker_id] = (worker, engine)
        engine.add_worker(worker)
        log.warning("inference worker %s on %s joined (%d threads)", worker_id, worker.host, worker.threads)
        self.bus.send(f"worker:{worker_id}", {"Action": "Worker-Admitted", "T": msg["T"]})

    def on_bye(self, msg: Message) -> None:
        self.retire(msg["Id"], "it stopped")

    def retire(self, worker_id: str, why: str) -> None:
        known = self.remote.pop(worker_id, None)
        if known is None:
            return
        worker, engine = known
        worker.dead.set()  # a job it was running fails now and goes back in the queue once
        engine.remove_worker(worker)
        log.warning("inference worker %s left: %s", worker_id, why)

    async def _sweep_dead(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(HEARTBEAT_S / 2)
            for worker_id, (worker, _) in list(self.remote.items()):
                if loop.time() - worker.seen > MISSED * HEARTBEAT_S:
                    self.retire(worker_id, f"no announcement for {MISSED * HEARTBEAT_S:g}s")


# --- the worker's own process --------------------------------------------------------------------------------


class WorkerActor(Actor):
    """`worker:<id>`: runs one job at a time on its llama.cpp process and answers with the result."""

    def __init__(self, worker_id: str, proc: WorkerProcess, bus: Bus):
        super().__init__(f"worker:{worker_id}")
        self.proc, self.bus = proc, bus
        self.refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.admitted = asyncio.Event()
        self.handle("run", action("Run"), self.on_run)
        self.handle("refused", action("Worker-Refused"), self.on_refused)
        self.handle("admitted", action("Worker-Admitted"), lambda msg: self.admitted.set())

    async def on_run(self, msg: Message) -> None:
        try:
            result = await self.proc.run(msg["Job"], msg.get("Timeout", 30.0))
        except JobFailed as exc:
            self.reply(msg, "Error", Code=exc.code, Message=exc.message)
            return
        self.reply(msg, "Run-Done", Result=result)

    def on_refused(self, msg: Message) -> None:
        if not self.refused.done():
            self.refused.set_result(msg["Reason"])


async def run_worker(url: str, model_path: str, threads: int, n_ctx: int, namespace: str) -> int:
    """`llama-land worker`: serve jobs until stopped (0) or refused by the server (3)."""
    from server.core.natsbus import NatsBus

    sha256 = await asyncio.to_thread(check_model, model_path)
    worker_id = process_id()
    bus = NatsBus(url, namespace, name=f"llama-land-worker {worker_id}")
    await bus.connect()
    proc = WorkerProcess(model_path, threads, n_ctx, name=worker_id)
    await proc.start()
    actor = WorkerActor(worker_id, proc, bus)
    bus.register(actor)
    actor.start()
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    print(f"worker {worker_id}: {model_path} ({sha256[:12]}…), {threads} threads, on {bus.shown}", flush=True)

    async def announce() -> None:
        while True:
            bus.send("workers", {"Action": "Worker-Hello", "Id": worker_id, "Model": sha256,
                                 "ModelFile": os.path.basename(model_path), "Build": proc.build, "Threads": threads,
                                 "NCtx": n_ctx, "Host": socket.gethostname(), "Jobs": proc.jobs, "T": now_ms()})
            await asyncio.sleep(HEARTBEAT_S)

    heartbeat = asyncio.get_running_loop().create_task(announce())
    try:
        done, _ = await asyncio.wait({stop, actor.refused}, return_when=asyncio.FIRST_COMPLETED)
        if actor.refused in done:
            print(f"worker {worker_id}: refused by the server: {actor.refused.result()}", flush=True)
            return 3
        return 0
    finally:
        heartbeat.cancel()
        bus.send("workers", {"Action": "Worker-Bye", "Id": worker_id, "T": now_ms()})
        await actor.stop()
        await proc.stop()
        await bus.close()
