"""Inference in a supervised child process: one llama.cpp model per worker, one job at a time.

Why a process: llama.cpp runs native code that can crash the whole process (an invalid grammar segfaults), and a
model is not thread-safe. A crash or a hang here costs one job, which the caller refunds or retries, never the
world server. The parent side (`WorkerProcess`) is asyncio-friendly: it waits on the pipe with the event loop's
reader callbacks, so the loop never blocks.

A job is a plain dict: messages (chat roles), max_tokens, temperature, top_k, top_p, seed, optional GBNF grammar,
optional persona key. The result carries everything a receipt needs: the rendered prompt, prompt and output token
ids, the output text, timings, and the build it ran on.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import re
import time
from collections import OrderedDict
from typing import Any

from npcs.inference.renderer import PromptRenderer, build_info, quiet_llama_cpp
from server.core.protocol import Code

log = logging.getLogger("llama_land.worker")

CUT = "\x00"  # marks where a user message's fixed start ends, to find it in the rendered prompt
PERSONA_STATES = 16  # saved persona prefixes per worker (a few MB each for the default model)


class JobFailed(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class WorkerCrashed(JobFailed):
    pass


# --- the child process ----------------------------------------------------------------------------------------


class _Engine(PromptRenderer):
    """Lives in the worker process only."""

    def __init__(self, model_path: str, n_threads: int, n_ctx: int, n_batch: int):
        import llama_cpp

        quiet_llama_cpp()
        self.llama_cpp = llama_cpp
        super().__init__(llama_cpp.Llama(model_path=model_path, n_ctx=n_ctx, n_threads=n_threads,
                                         n_threads_batch=n_threads, n_batch=n_batch, verbose=False, seed=0))
        self.personas: OrderedDict[str, tuple[list[int], Any]] = OrderedDict()
        self.build = build_info(llama_cpp)

    def _save_prefix(self, prefix: list[int]) -> Any:
        """The KV cache of sequence 0 (holding exactly `prefix`), as bytes llama.cpp can put back."""
        lc, ctx = self.llama_cpp, self.llm._ctx.ctx
        size = lc.llama_state_seq_get_size(ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        return buf, lc.llama_state_seq_get_data(ctx, buf, size, 0)

    def _restore_prefix(self, prefix: list[int], saved: Any) -> None:
        """Put a saved prefix back. Llama.load_state would also rewrite its whole logits buffer (n_batch x vocab
        floats, ~14 ms a vote); only the KV cache and the token bookkeeping matter here (~0.4 ms)."""
        lc, llm = self.llama_cpp, self.llm
        buf, n = saved
        lc.llama_memory_seq_rm(lc.llama_get_memory(llm._ctx.ctx), 0, -1, -1)
        if lc.llama_state_seq_set_data(llm._ctx.ctx, buf, n, 0) != n:
            raise JobFailed(Code.INFERENCE_FAILED, "could not restore a saved prompt prefix")
        llm.input_ids[: len(prefix)] = prefix
        llm.n_tokens = len(prefix)
        llm._requires_eval = True

    def _prefix_of(self, system: dict[str, str], user_head: str, tokens: list[int]) -> list[int] | None:
        """What a job's prompt can share with every prompt of its template: the system prompt and, when given, the
        fixed start of the user message (up to its last letter or digit, since a quote or bracket may merge with
        the first character of the value that follows). None if the prompt does not split cleanly there."""
        head = re.match(r"(?s)^(.*[A-Za-z0-9])", user_head or "")
        candidates = []
        if head:
            marked = self.render([system, {"role": "user", "content": head.group(1) + CUT}])
            if CUT in marked:
                candidates.append(self.tokens(marked[: marked.index(CUT)]))
        candidates.append(self.tokens(self.system_formatter(messages=[system]).prompt))
        return next((c for c in candidates if tokens[: len(c)] == c), None)

    def _use_persona(self, key: str, system: dict[str, str], tokens: list[int], user_head: str = "") -> int:
        """Make the KV cache start with this persona's saved prefix; returns how many tokens were reused."""
        llm = self.llm
        cached = self.personas.get(key)
        if cached is None:
            prefix = self._prefix_of(system, user_head, tokens)
            if prefix is None:
                return 0  # the template does not split cleanly at the system prompt: no reuse
            llm.reset()
            llm.eval(prefix)
            self.personas[key] = cached = (prefix, self._save_prefix(prefix))
            while len(self.personas) > PERSONA_STATES:
                self.personas.popitem(last=False)
            return 0
        self.personas.move_to_end(key)
        prefix, saved = cached
        if tokens[: len(prefix)] != prefix:
            return 0
        if llm.n_tokens < len(prefix) or list(llm.input_ids[: len(prefix)]) != prefix:
            self._restore_prefix(prefix, saved)
        return len(prefix)

    def _hold_prefix(self, key: str, system: dict[str, str], tokens: list[int], user_head: str = "") -> int:
        """Make the KV cache hold exactly this persona's saved system prompt and nothing after it; returns its
        length in tokens (0: the template does not split cleanly there, and the cache is empty). Scoring always
        evaluates [saved prefix | rest]: where a prompt is split between decode calls moves the logits enough to
        flip a near-tie, so `verify` must be able to split it the same way."""
        llm = self.llm
        self._use_persona(key, system, tokens, user_head)
        cached = self.personas.get(key)
        if cached is None or tokens[: len(cached[0])] != cached[0]:
            llm.reset()
            return 0
        prefix, saved = cached
        if llm.n_tokens < len(prefix) or list(llm.input_ids[: len(prefix)]) != prefix:
            self._restore_prefix(prefix, saved)
        llm.n_tokens = len(prefix)  # the next eval drops whatever the cache held after the prefix
        return len(prefix)

    def _choice_logits(self, tokens: list[int], n_prefix: int, choices: list[str]) -> dict[str, float]:
        """Evaluate tokens[n_prefix:] after the cached prefix; the logits of each choice's token at the end."""
        llm = self.llm
        llm.eval(tokens[n_prefix:])
        logits = self.llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
        return {c: float(logits[self.tokens(c)[0]]) for c in choices}

    def score(self, job: dict[str, Any]) -> dict[str, Any]:
        """One forward pass: the answer is the likeliest choice; every choice's logit goes into the receipt."""
        started = time.perf_counter()
        prompt = self.render(job["messages"]) + (job.get("answer_prefix") or "")
        tokens = self.tokens(prompt)
        if len(tokens) + 1 > self.llm.n_ctx():
            raise JobFailed(Code.PROMPT_TOO_LONG, f"prompt is {len(tokens)} tokens; the context is {self.llm.n_ctx()}")
        n_prefix = self._hold_prefix(job["persona"], job["messages"][0], tokens, job.get("user_head", "")) \
            if job.get("persona") else 0
        if not n_prefix:
            self.llm.reset()
        scores = self._choice_logits(tokens, n_prefix, job["choices"])
        best = max(job["choices"], key=lambda c: scores[c])  # ties: the first choice listed
        done = time.perf_counter()
        return {"id": job["id"], "ok": True, "prompt": prompt, "prompt_tokens": tokens,
                "output_tokens": self.tokens(best), "text": (job.get("answer_prefix") or "") + best,
                "reused_tokens": n_prefix, "n_prefix": n_prefix, "scores": scores, "finish": "stop",
                "ttft_ms": (done - started) * 1000, "gen_ms": 0.0, "total_ms": (done - started) * 1000,
                "build": self.build}

    def rescore(self, job: dict[str, Any]) -> dict[str, Any]:
        """Teacher forcing for `verify`: the logged prompt tokens in a fresh context, split where the receipt says
        (the saved prefix, then the rest), and the choices' logits at the end."""
        tokens, n_prefix = job["prompt_tokens"], job["n_prefix"]
        self.llm.reset()
        if n_prefix:
            self.llm.eval(tokens[:n_prefix])
        scores = self._choice_logits(tokens, n_prefix, job["choices"])
        return {"id": job["id"], "ok": True, "scores": scores, "build": self.build}

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        if job.get("mode") == "score":
            return self.score(job)
        if job.get("mode") == "rescore":
            return self.rescore(job)
        llm = self.llm
        started = time.perf_counter()
        prefix = job.get("answer_prefix") or ""
        prompt = self.render(job["messages"]) + prefix  # the answer's given start, so the model only finishes it
        tokens = self.tokens(prompt)
        max_tokens = job["max_tokens"]
        if len(tokens) + max_tokens > llm.n_ctx():
            raise JobFailed(Code.PROMPT_TOO_LONG, f"prompt is {len(tokens)} tokens; with {max_tokens} to generate it "
                                               f"exceeds the context of {llm.n_ctx()}")
        reused = 0
        if job.get("persona"):
            reused = self._use_persona(job["persona"], job["messages"][0], tokens, job.get("user_head", ""))
        grammar = None
        if job.get("grammar"):
            grammar = self.llama_cpp.LlamaGrammar.from_string(job["grammar"], verbose=False)
        llm.set_seed(job["seed"])
        out: list[int] = []
        first = None
        finish = "length"
        gen = llm.generate(tokens, top_k=job["top_k"], top_p=job["top_p"], temp=job["temperature"],
                           repeat_penalty=1.0, grammar=grammar, reset=True)
        for tok in gen:
            if first is None:
                first = time.perf_counter()
            if tok in self.stop_ids:
                finish = "stop"
                break
            out.append(tok)
            if len(out) >= max_tokens:
                break
        done = time.perf_counter()
        first = first or done
        return {
            "id": job["id"], "ok": True, "prompt": prompt, "prompt_tokens": tokens, "output_tokens": out,
            "text": prefix + llm.detokenize(out).decode("utf-8", errors="replace"), "reused_tokens": reused,
            "finish": finish,
            "ttft_ms": (first - started) * 1000, "gen_ms": (done - first) * 1000,
            "total_ms": (done - started) * 1000, "build": self.build,
        }


def worker_main(conn: Any, model_path: str, n_threads: int, n_ctx: int, n_batch: int) -> None:
    try:
        engine = _Engine(model_path, n_threads, n_ctx, n_batch)
    except Exception as exc:  # reported to the parent, which names the model file
        conn.send({"ready": False, "message": f"{type(exc).__name__}: {exc}"})
        return
    conn.send({"ready": True, "build": engine.build, "n_ctx": engine.llm.n_ctx()})
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            result = engine.run(job)
        except JobFailed as exc:
            result = {"id": job["id"], "ok": False, "code": exc.code, "message": exc.message}
        except Exception as exc:
            result = {"id": job["id"], "ok": False, "code": Code.INFERENCE_FAILED, "message": f"{type(exc).__name__}: {exc}"}
        conn.send(result)


# --- the parent side ------------------------------------------------------------------------------------------


class WorkerProcess:
    """One supervised worker. `run` one job at a time; a crash or timeout fails that job and restarts the worker."""

    def __init__(self, model_path: str, n_threads: int = 1, n_ctx: int = 2048, n_batch: int = 256, name: str = "w0"):
        self.model_path, self.n_threads, self.n_ctx, self.n_batch = model_path, n_threads, n_ctx, n_batch
        self.name = name
        self.proc: multiprocessing.process.BaseProcess | None = None
        self.conn: Any = None
        self._waiting: asyncio.Future | None = None
        self.build: dict[str, str] = {}
        self.restarts = 0
        self.jobs = 0

    async def start(self, timeout: float = 60.0) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork: the parent has threads and an event loop
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker_main, args=(child, self.model_path, self.n_threads, self.n_ctx,
                                                            self.n_batch), name=f"llama-land-{self.name}", daemon=True)
        self.proc.start()
        child.close()  # so a dead worker shows as EOF on our end
        self.conn = parent
        loop = asyncio.get_running_loop()
        self._waiting = loop.create_future()
        loop.add_reader(parent.fileno(), self._readable)
        try:
            hello = await asyncio.wait_for(self._waiting, timeout)
        except (asyncio.TimeoutError, JobFailed):
            self.kill()
            raise JobFailed(Code.WORKER_START_FAILED, f"inference worker for {self.model_path} did not start") from None
        finally:
            self._waiting = None
        if not hello.get("ready"):
            self.kill()
            raise JobFailed(Code.WORKER_START_FAILED, f"cannot load model {self.model_path}: {hello.get('message')}")
        self.build = hello["build"]

    def _readable(self) -> None:
        fut = self._waiting
        try:
            msg = self.conn.recv()
        except (EOFError, OSError):
            self._detach()
            if fut is not None and not fut.done():
                fut.set_exception(WorkerCrashed(Code.WORKER_CRASHED, f"inference worker {self.name} died "
                                                                  f"(exit code {self.proc.exitcode if self.proc else '?'})"))
            return
        if fut is not None and not fut.done():
            fut.set_result(msg)

    def _detach(self) -> None:
        if self.conn is not None:
            try:
                asyncio.get_running_loop().remove_reader(self.conn.fileno())
            except (ValueError, OSError):
                pass
            self.conn.close()
            self.conn = None

    def kill(self) -> None:
        self._detach()
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.proc = None

    @property
    def busy(self) -> bool:
        return self._waiting is not None

    async def run(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self.conn is None:
            self.restarts += 1
            await self.start()
        loop = asyncio.get_running_loop()
        self._waiting = loop.create_future()
        self.conn.send(job)
        self.jobs += 1
        try:
            result = await asyncio.wait_for(self._waiting, timeout)
        except asyncio.TimeoutError:
            self.kill()  # a hung worker is replaced; its job is the caller's to refund or retry
            raise JobFailed(Code.WORKER_TIMEOUT, f"inference took longer than {timeout:g}s") from None
        except WorkerCrashed:
            self.kill()
            raise
        finally:
            self._waiting = None
        if not result.get("ok"):
            raise JobFailed(result["code"], result["message"])
        return result

    async def stop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.send(None)
            except OSError:
                pass
        if self.proc is not None:
            await asyncio.to_thread(self.proc.join, 5)
        self.kill()
