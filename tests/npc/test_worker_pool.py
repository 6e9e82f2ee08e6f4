"""The engine's pool with workers that come and go (the remote kind), and the registry's admission rules. The
workers here are stand-ins with the engine's worker interface; the real remote workers, with the real model over
a real nats-server, are in test_remote_workers.py."""

import asyncio
from types import SimpleNamespace

import pytest

from npcs.inference.engine import InferenceEngine, InferenceRequest
from npcs.inference.models import default_model_path
from npcs.inference.remote import WorkerRegistry
from npcs.inference.templates import PromptTemplate
from npcs.inference.worker import WorkerCrashed
from server.core.actors import LocalBus
from server.core.db import InferenceReceipt

BUILD = {"llama_cpp_python": "0.3.36", "system": "AVX2 = 1"}


class StandIn:
    def __init__(self, name, crashes=0):
        self.name, self.crashes, self.busy, self.restarts, self.jobs, self.n_ctx = name, crashes, False, 0, 0, 2048

    async def start(self):
        pass

    async def stop(self):
        pass

    async def run(self, job, timeout):
        self.jobs += 1
        await asyncio.sleep(0.01)
        if self.crashes:
            self.crashes -= 1
            raise WorkerCrashed("WORKER_CRASHED", f"{self.name} died")
        return {"prompt": "p", "prompt_tokens": [1, 2], "output_tokens": [3], "text": "ok", "build": BUILD,
                "ttft_ms": 1.0, "gen_ms": 1.0, "reused_tokens": 0, "finish": "stop"}


def request(rid):
    template = PromptTemplate(id="t@1", system="s", user="u", max_tokens=4)
    return InferenceRequest(template, {}, "fed", rid, persona="t@1:x")


@pytest.fixture
async def engine(db):
    e = InferenceEngine(default_model_path(), db, workers=0)
    await e.start()
    yield e
    await e.stop()


async def test_a_job_whose_worker_dies_runs_once_more_on_another_and_its_receipt_is_stored(engine, db):
    dying, healthy = StandIn("dying", crashes=1), StandIn("healthy")
    engine.add_worker(dying)
    result = asyncio.ensure_future(engine.infer(request("r1")))
    await asyncio.sleep(0.005)
    engine.add_worker(healthy)
    done = await asyncio.wait_for(result, 10)
    assert done.text == "ok" and engine.stats.retried == 1 and healthy.jobs + dying.jobs == 2
    with db.session() as session:
        assert session.get(InferenceReceipt, done.receipt_id) is not None


async def test_a_job_that_loses_two_workers_fails_for_its_caller(engine):
    engine.add_worker(StandIn("a", crashes=5))
    with pytest.raises(WorkerCrashed):
        await asyncio.wait_for(engine.infer(request("r2")), 10)
    assert engine.stats.retried == 1 and engine.stats.failed == 1


async def test_with_no_worker_a_job_waits_and_a_worker_that_joins_takes_it(engine):
    result = asyncio.ensure_future(engine.infer(request("r3")))
    await asyncio.sleep(0.1)
    assert not result.done() and engine.queue.qsize() == 1
    late = StandIn("late")
    engine.add_worker(late)
    assert (await asyncio.wait_for(result, 10)).text == "ok"
    engine.remove_worker(late)
    assert engine.workers == []


def test_the_registry_admits_only_the_worlds_model_and_build():
    async def check():
        engine = SimpleNamespace(model_sha256="a" * 64, model_path="/m/world.gguf")
        registry = WorkerRegistry(LocalBus(), [engine], BUILD)
        hello = {"Id": "w1", "Model": "a" * 64, "Build": BUILD, "Threads": 2, "NCtx": 2048, "T": 1}
        assert registry.why_not(hello) is None
        assert "is not this world's" in registry.why_not({**hello, "Model": "b" * 64})
        other = {**BUILD, "system": "AVX512 = 1"}
        assert "build differs" in registry.why_not({**hello, "Build": other})
    asyncio.run(check())
