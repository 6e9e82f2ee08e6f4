"""Persona affinity, pure: a free worker takes the next job, or — among jobs just as urgent — the oldest whose
persona's saved prefix it holds. Priority is never passed over."""

from collections import OrderedDict

from npcs.inference.engine import InferenceRequest, _Queued, warm_pick


def job(priority, seq, persona):
    request = InferenceRequest(template=None, values={}, requester="fed", request_id=f"r{seq}", persona=persona,
                               priority=priority)
    return _Queued(priority, seq, request, {}, None, 0.0)


def test_a_worker_takes_the_oldest_job_as_urgent_as_the_next_whose_persona_it_holds():
    nxt = job(5, 1, "hawk")
    waiting = [job(5, 3, "dove"), job(5, 2, "dove"), job(10, 4, "chair")]
    assert warm_pick(nxt, waiting, OrderedDict(dove=None)).request.request_id == "r2"


def test_the_next_job_when_it_is_warm_when_none_is_or_when_the_warm_one_is_less_urgent():
    nxt = job(5, 1, "hawk")
    assert warm_pick(nxt, [job(5, 2, "dove")], OrderedDict(hawk=None, dove=None)) is nxt
    assert warm_pick(nxt, [job(5, 2, "dove")], OrderedDict()) is nxt
    assert warm_pick(nxt, [job(10, 2, "dove")], OrderedDict(dove=None)) is nxt  # never past a more urgent job
