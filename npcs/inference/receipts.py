"""Inference receipts: what ran, on what, with which output — and re-running it to check.

A receipt stores the model's sha256, the template id, the rendered prompt and its token ids, the grammar, the
sampling parameters including the seed (derived from the request's message id), the output token ids and text,
token counts, timings and the build (llama-cpp-python version and CPU features). Its hash covers everything but
the timings, so an edited receipt is caught; `verify` re-runs the job in a fresh worker and compares token by token.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import msgpack

from server.core.clock import now_ms
from server.core.db import Database, InferenceReceipt
from server.core.state import digest

from npcs.inference.models import ModelError, check_model
from npcs.inference.worker import JobFailed, WorkerProcess

HASHED = ("created_ms", "requester", "request_id", "template_id", "persona", "model_path", "model_sha256",
          "messages", "prompt", "grammar", "params", "prompt_tokens", "output_tokens", "output_text", "n_prompt",
          "n_output", "build")


def seed_for(request_id: str) -> int:
    """The sampling seed of a request: derived from its message id, so a re-run uses the same one."""
    return int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:4], "big") & 0x7FFFFFFF


def receipt_hash(fields: dict[str, Any]) -> str:
    """Covers every field but the timings; `scores` only where a receipt has them (older ones hash as before)."""
    return digest({k: fields[k] for k in HASHED} | ({"scores": fields["scores"]} if fields.get("scores") else {}))


def make_receipt(job: dict[str, Any], result: dict[str, Any], *, requester: str, request_id: str, template_id: str,
                 model_path: str, model_sha256: str, queue_ms: float) -> InferenceReceipt:
    fields: dict[str, Any] = {
        "created_ms": now_ms(), "requester": requester, "request_id": request_id,
        "template_id": template_id, "persona": job.get("persona"), "model_path": model_path,
        "model_sha256": model_sha256, "messages": json.dumps(job["messages"], ensure_ascii=False),
        "prompt": result["prompt"], "grammar": job.get("grammar"),
        "params": json.dumps({k: job[k] for k in ("max_tokens", "temperature", "top_k", "top_p", "seed")}
                             | ({"answer_prefix": job["answer_prefix"]} if job.get("answer_prefix") else {})
                             | {"repeat_penalty": 1.0}
                             | ({"mode": "score", "choices": job["choices"], "n_prefix": result["n_prefix"]}
                                if job.get("mode") == "score" else {}), sort_keys=True),
        "prompt_tokens": msgpack.packb(result["prompt_tokens"]), "output_tokens": msgpack.packb(result["output_tokens"]),
        "output_text": result["text"], "n_prompt": len(result["prompt_tokens"]), "n_output": len(result["output_tokens"]),
        "build": json.dumps(result["build"], sort_keys=True),
    }
    if "scores" in result:  # a scored answer: every choice's logit, what verify checks the answer against
        fields["scores"] = json.dumps(result["scores"], sort_keys=True)
    h = receipt_hash(fields)
    return InferenceReceipt(id=h[:24], hash=h, queue_ms=queue_ms, ttft_ms=result["ttft_ms"], gen_ms=result["gen_ms"],
                            **fields)


def job_of(receipt: InferenceReceipt) -> dict[str, Any]:
    """The job a receipt describes, ready to run again."""
    params = json.loads(receipt.params)
    return {"id": f"verify-{receipt.id}", "messages": json.loads(receipt.messages), "grammar": receipt.grammar,
            "persona": None, "answer_prefix": params.get("answer_prefix", ""),
            **{k: params[k] for k in ("max_tokens", "temperature", "top_k", "top_p", "seed")}}


@dataclass
class Verdict:
    match: bool
    lines: list[str]


async def verify(db: Database, receipt_id: str, model_path: str | None = None) -> Verdict:
    with db.session() as session:
        receipt = session.get(InferenceReceipt, receipt_id)
    if receipt is None:
        return Verdict(False, [f"no receipt {receipt_id!r}"])
    lines = [f"receipt {receipt.id}: template {receipt.template_id}, {receipt.n_prompt} prompt + "
             f"{receipt.n_output} output tokens, model sha256 {receipt.model_sha256[:16]}…"]
    fields = {k: getattr(receipt, k) for k in (*HASHED, "scores")}
    if receipt_hash(fields) != receipt.hash:
        return Verdict(False, lines + ["MISMATCH: the stored receipt was altered (its hash does not match)"])
    path = model_path or receipt.model_path
    try:
        check_model(path, receipt.model_sha256)
    except ModelError as exc:
        return Verdict(False, lines + [f"cannot re-run: {exc}"])
    build = json.loads(receipt.build)
    params = json.loads(receipt.params)
    if params.get("mode") == "score":
        return await rescore(receipt, params, path, lines)
    worker = WorkerProcess(path, n_threads=1)
    try:
        await worker.start()
        if worker.build != build:
            lines.append(f"note: recorded on {build.get('llama_cpp_python')} ({build.get('system', '')[:60]}…), "
                         f"re-run on {worker.build.get('llama_cpp_python')}: a different build may diverge")
        result = await worker.run(job_of(receipt), timeout=120)
    except JobFailed as exc:
        return Verdict(False, lines + [f"cannot re-run: {exc.code}: {exc.message}"])
    finally:
        await worker.stop()
    want_prompt = msgpack.unpackb(receipt.prompt_tokens)
    if result["prompt_tokens"] != want_prompt:
        return Verdict(False, lines + ["MISMATCH: the prompt renders to different tokens on this build"])
    want, got = msgpack.unpackb(receipt.output_tokens), result["output_tokens"]
    if want == got:
        return Verdict(True, lines + [f"match: the re-run produced the same {len(got)} output tokens "
                                      f"({receipt.output_text[:60]!r})"])
    at = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
    return Verdict(False, lines + [
        f"MISMATCH at output token {at}: recorded {want[at] if at < len(want) else 'end'}, "
        f"re-run {got[at] if at < len(got) else 'end'}",
        f"recorded: {receipt.output_text!r}", f"re-run:   {result['text']!r}"])


def margin(scores: dict[str, float], choice: str) -> float:
    """How far a choice's logit is above the best other choice (negative: another choice was rated higher)."""
    return scores[choice] - max(v for c, v in scores.items() if c != choice)


async def rescore(receipt: InferenceReceipt, params: dict[str, Any], path: str, lines: list[str]) -> Verdict:
    """Teacher forcing for a scored answer: the logged prompt tokens in a fresh context, split as logged, and for
    the recorded output token whether it is still the top allowed choice, and by what margin."""
    recorded = json.loads(receipt.scores or "{}")
    choice = receipt.output_text[len(params.get("answer_prefix", "")):]
    worker = WorkerProcess(path, n_threads=1)
    try:
        await worker.start()
        result = await worker.run({"id": f"verify-{receipt.id}", "mode": "rescore", "choices": params["choices"],
                                   "prompt_tokens": msgpack.unpackb(receipt.prompt_tokens),
                                   "n_prefix": params["n_prefix"]}, timeout=120)
    except JobFailed as exc:
        return Verdict(False, lines + [f"cannot re-score: {exc.code}: {exc.message}"])
    finally:
        await worker.stop()
    scores = result["scores"]
    top = max(params["choices"], key=lambda c: scores[c])
    drift = max((abs(scores[c] - recorded[c]) for c in recorded), default=0.0)
    shown = ", ".join(f"{c}: {scores[c]:.3f}" for c in params["choices"])
    lines.append(f"re-scored in a fresh context ({params['n_prefix']} prefix tokens, then "
                 f"{receipt.n_prompt - params['n_prefix']}): {shown}")
    if choice not in scores:
        return Verdict(False, lines + [f"MISMATCH: the recorded answer {choice!r} is not one of the choices"])
    was = f"recorded {margin(recorded, choice):+.3f}" if recorded else "no logits recorded"
    lines.append(f"output token 0 ({choice!r}): {'the top' if top == choice else 'NOT the top'} allowed choice, "
                 f"margin {margin(scores, choice):+.3f} ({was}; the logits moved by at most {drift:.4f})")
    if top != choice:
        lines.append(f"MISMATCH: the re-score prefers {top!r}")
    return Verdict(top == choice, lines)
