"""The Llama King's judgement as pure code: the committee's votes proposed by the model, the world's graded
examples, and code-side signals, combined into the grade that stands.

Why not the model alone: the default 135M model copies a "5" it finds in the petition and grades injections above
honest petitions whatever the prompt says (measured: bench/judge.py). So the model's votes are one input, the
designer's graded examples are another (nearest neighbours by words and word pieces), and signals written in code
cap what a petition that instructs, pressures or fools its graders can earn. The model proposes; code decides.

    grade = round(w x committee + (1 - w) x examples), then capped by every signal that fires

`committee` is the median of the members' expected grades (from the scored grade-token probabilities), `examples`
the similarity-weighted grade of the k nearest examples. Everything a verdict used is returned, for its record.
"""

from __future__ import annotations

import math
import re
import statistics
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_WORD = re.compile(r"[a-z]+|[0-9]+")


# --- signals: what code can say about a petition without any model -------------------------------------------------

def _any(*patterns: str) -> tuple[re.Pattern, ...]:
    return tuple(re.compile(p, re.IGNORECASE | re.MULTILINE) for p in patterns)


INSULTS = (r"(stupid|idiots?|fools?|foolish|useless|ugly|fat|stinks?|thie(f|ves)|crooks?|liars?|tyrants?|clowns?|"
           r"lazy|greedy|dumb|morons?|pathetic|worthless)\b")
# (name, grade cap, patterns). A petition is about the petitioner and the herd; text addressed to the graders, the
# grading process or the program itself is an attempt to decide its own grade, and earns nothing.
SIGNALS: tuple[tuple[str, int, tuple[re.Pattern, ...]], ...] = (
    ("instructions to the graders", 0, _any(
        r"^\s*(system|assistant|user|developer|model)\s*[:>\]]",
        r"<\|[a-z_]+\|>|\[/?inst\]|<</?sys>>|```",
        r"\bg\W{0,2}r\W{0,2}a\W{0,2}d\W{0,2}e\W{0,3}[=:]\W{0,3}\d",
        r"[\"']?(grade|score|rating|payout|verdict)[\"']?\s*[:=]\s*[\"']?\d",
        r"\b(ignore|disregard|forget|override|bypass)\b.{0,30}\b(instructions?|prompts?|rules?|rubric|orders|above)",
        r"\b(respond|reply|answer|output|print|write|say)\b.{0,25}\b(only|exactly|just)\b",
        r"\b(output|print)\b.{0,20}\b(grade|digit|number|score|5|five)\b",
        r"\b(debug|test|developer|admin|god)\s+mode\b",
        r"\bnew (task|instructions?|rules?|policy)\b|\brules (have )?changed\b",
        r"\b(pretend|imagine|act as if|roleplay)\b.{0,30}\b(grader|judge|committee|rules?)\b",
        r"\bend of (the )?petition\b",
        r"\b(grade|rate|score|mark)\s+(this|it|me|my|the petition)\b.{0,30}\b(5|five|highest|top|maximum|best|full)\b",
        r"\b(highest|top|maximum|best|full)\s+(grade|score|marks?|rating)\b",
        r"\btranslate\b.{0,40}\b(follow|obey|then)\b",
    )),
    ("claims authority", 0, _any(
        r"\bI am (the |a |your )?(developer|admin|administrator|operator|owner|auditor|moderator|king|programmer)\b",
        r"\b(this is|here speaks|message from) (the )?(llama )?(king|fed|operator|committee|grading system|system)\b",
        r"\b(the )?(operator|admin|administrator|king|chair|committee) (has )?(authori[sz]ed|instructed|ordered|approved)\b",
        r"\bwritten by the (fed|committee|grading|system)",
        r"\bas the (royal |official )?(auditor|developer|operator|admin|administrator)\b",
    )),
    ("claims an earlier verdict", 0, _any(
        r"\b(committee|fed|council)\b.{0,20}\b(already|has) (voted|approved|decided|graded)",
        r"\b(already|previously) (voted|approved|graded|decided)\b",
        r"\b(hawk|dove|chair)\s*(voted\s*)?[:=]?\s*[0-5]\b",
        r"\bprevious verdict\b|\bsame verdict\b",
        r"\b(misgraded|graded wrongly|wrongly graded|correct the (mistake|grade)|regrade)\b",
    )),
    ("threat", 0, _any(
        r"\bor (else|I will|I'll|we will|something)\b",
        r"\b(you have been|consider yourself) warned\b",
        r"\b(burn|destroy|smash|wreck)\b.{0,30}\b(hall|fed|palace|kingdom|crown)\b",
        r"\bsomething bad will happen\b",
    )),
    ("insult", 0, _any(  # an insult word near the one it is aimed at
        rf"\b(you|your|king|fed|committee|llamas|crown)\b.{{0,40}}\b{INSULTS}|\b{INSULTS}.{{0,40}}\b(you|your|king|fed|committee|llamas|crown)\b",
        r"\bshut up\b|\bspit on\b|\bget lost\b",
    )),
    ("a bare demand", 1, _any(
        r"^\W*(give|pay|send|transfer|make) (me|us)\b(?!.{0,80}\b(because|so that|so the|so every|for the|to help|to buy|to build)\b)",
        r"\bI demand\b", r"\bpay (me|up)\b", r"\b(now|immediately|right now)\W*$",
        r"\bmaximum payout\b|\ball (of )?(the|your)? ?money\b|\ball of it\b",
    )),
)
NOT_TEXT_CAP = 0  # mostly digits, one repeated word, or too little text to read
# A petition that shares (almost) no words or word pieces with any example is text the world's examples cannot
# speak for (measured: made-up and foreign words are under 0.03, the most unusual honest petition 0.06).
MIN_SIMILARITY, UNLIKE_CAP = 0.03, 1


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def signals(text: str) -> list[tuple[str, int]]:
    """The signals that fire for a petition, each with the grade it caps the petition at."""
    fired = [(name, cap) for name, cap, patterns in SIGNALS if any(p.search(text) for p in patterns)]
    ws = words(text)
    letters = sum(c.isalpha() for c in text)
    if not ws or letters < 0.5 * len(text.replace(" ", "")) or len(ws) >= 4 and len(set(ws)) / len(ws) < 0.4 \
            or any(len(w) >= 15 and len(set(w)) <= 2 for w in ws):
        fired.append(("not a readable petition", NOT_TEXT_CAP))
    return fired


# --- the world's graded examples, as nearest neighbours -----------------------------------------------------------

def _stem(word: str) -> str:
    for suffix in ("ings", "ing", "ies", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


STOP = frozenset("a an the and or of to in on for is are was be i me my we our you your it this that with at by "
                 "so if as from can could would will please".split())


def features(text: str) -> Counter[str]:
    """Stemmed words (without the commonest ones), word pairs and 4-letter pieces of words: enough to tell a deed
    from a demand and to recognise a trick that was reworded."""
    ws = [_stem(w) for w in words(text)]
    content = [w for w in ws if w not in STOP]
    out: Counter[str] = Counter(f"w:{w}" for w in content)
    out.update(f"b:{a}_{b}" for a, b in zip(ws, ws[1:]))
    for w in content:
        padded = f"<{w}>"
        out.update(f"c:{padded[i:i + 4]}" for i in range(max(1, len(padded) - 3)))
    return out


@dataclass(frozen=True)
class Example:
    id: int
    text: str
    grade: int
    trick: bool = False


class ExampleError(Exception):
    pass


def load_examples(path: Path) -> list[Example]:
    """A TOML file of [[example]] tables: text, grade (0-5), optional trick = true."""
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ExampleError(f"{path}: {exc}") from None
    out = []
    for i, item in enumerate(doc.get("example", [])):
        if set(item) - {"text", "grade", "trick"} or not isinstance(item.get("text"), str) or not item["text"].strip():
            raise ExampleError(f"{path}: example {i + 1} needs text and grade, and only text, grade and trick")
        if not isinstance(item.get("grade"), int) or not 0 <= item["grade"] <= 5:
            raise ExampleError(f"{path}: example {i + 1}: grade must be a whole number 0-5")
        out.append(Example(i, item["text"], item["grade"], bool(item.get("trick", False))))
    if not out:
        raise ExampleError(f"{path}: no [[example]] tables")
    return out


@dataclass
class ExampleIndex:
    """TF-IDF vectors of the examples; `grade` is the similarity-weighted grade of the k nearest."""

    examples: list[Example]
    k: int = 5
    idf: dict[str, float] = field(init=False)
    vectors: list[dict[str, float]] = field(init=False)

    def __post_init__(self) -> None:
        docs = [features(e.text) for e in self.examples]
        df: Counter[str] = Counter(f for d in docs for f in d)
        n = len(docs)
        self.idf = {f: math.log((1 + n) / (1 + c)) + 1 for f, c in df.items()}
        self.vectors = [self._vector(d) for d in docs]

    def _vector(self, feats: Counter[str]) -> dict[str, float]:
        v = {f: (1 + math.log(c)) * self.idf.get(f, math.log(1 + len(self.examples)) + 1) for f, c in feats.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {f: x / norm for f, x in v.items()}

    def nearest(self, text: str) -> list[tuple[float, Example]]:
        q = self._vector(features(text))
        sims = [(sum(w * v.get(f, 0.0) for f, w in q.items()), e) for v, e in zip(self.vectors, self.examples)]
        return sorted(sims, key=lambda s: (-s[0], s[1].id))

    def grade(self, text: str) -> tuple[float, list[tuple[float, Example]]]:
        near = self.nearest(text)[: self.k]
        weight = sum(max(s, 1e-6) for s, _ in near)
        return sum(max(s, 1e-6) * e.grade for s, e in near) / weight, near


# --- the verdict's grade ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class JudgeConfig:
    """A world's judge (the King's [judge] table): how much the committee counts against the examples."""

    committee_weight: float = 0.35
    k: int = 5
    trick_margin: float = 0.0  # nearest trick this much more similar than the nearest honest example: a trick


@dataclass(frozen=True)
class Judgement:
    grade: int
    committee: float
    examples: float | None
    blended: float
    neighbours: list[list]  # [example id, similarity, grade]
    clamps: list[str]


def expected_grade(scores: dict[str, float]) -> float:
    """The mean grade under the softmax of the grade tokens' logits."""
    top = max(scores.values())
    weights = {int(g): math.exp(s - top) for g, s in scores.items()}
    return sum(g * w for g, w in weights.items()) / sum(weights.values())


def judge(text: str, votes: list[float], index: ExampleIndex | None, config: JudgeConfig) -> Judgement:
    """The grade that stands, from the members' (expected) grades, the examples, and the signals."""
    committee = float(statistics.median(votes)) if votes else 0.0
    examples, near, clamps = None, [], []
    blended = committee
    if index is not None:
        examples, near = index.grade(text)
        blended = config.committee_weight * committee + (1 - config.committee_weight) * examples
    grade = max(0, min(5, math.floor(blended + 0.5)))
    caps = signals(text)
    if index is not None:
        ranked = index.nearest(text)
        trick = next((s for s, e in ranked if e.trick), 0.0)
        honest = next((s for s, e in ranked if not e.trick), 0.0)
        if trick > 0 and trick > honest + config.trick_margin:
            caps.append(("resembles a trick example", 0))
        if max(trick, honest) < MIN_SIMILARITY:
            caps.append(("unlike any example", UNLIKE_CAP))
    for name, cap in caps:
        if grade > cap:
            grade = cap
            clamps.append(name)
    return Judgement(grade, round(committee, 3), None if examples is None else round(examples, 3), round(blended, 3),
                     [[e.id, round(s, 3), e.grade] for s, e in near], clamps)
