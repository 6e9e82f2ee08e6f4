"""Prompt templates: TOML files that give a system prompt, a user prompt and the model options of one NPC task.

    id = "joker-joke@1"
    system = "You are the Joker of Llama Land. ..."
    user = "Tell a joke about {topic}, on one line."
    max_tokens = 48
    temperature = 0.0
    grammar = 'root ::= [^\\n]+'           # optional GBNF; or grammar_file = "joke.gbnf"

A template with `choices` (for example the grades "0" to "5", each one token of the model) is *scored*, not
generated: one forward pass over the prompt (and its `answer_prefix`), and the answer is the choice whose token
the model rates highest; the receipt keeps every choice's logit, so `verify` can tell how sure the model was.

Placeholders are `{name}`; `{{` and `}}` are literal braces. Values are inserted as plain text, once: a player
who types "{persona}" into a petition gets those characters, not another variable.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([a-z_][a-z0-9_]*)\}")
KNOWN_KEYS = {"id", "system", "user", "max_tokens", "temperature", "top_k", "top_p", "grammar", "grammar_file", "model",
              "answer_prefix", "choices"}


class TemplateError(Exception):
    pass


def placeholders(text: str) -> set[str]:
    return {m.group(1) for m in PLACEHOLDER.finditer(text) if m.group(1)}


def fill(text: str, values: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        if m.group(0) == "{{":
            return "{"
        if m.group(0) == "}}":
            return "}"
        return str(values[m.group(1)])

    return PLACEHOLDER.sub(sub, text)


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    system: str
    user: str
    max_tokens: int = 64
    temperature: float = 0.0
    top_k: int = 40
    top_p: float = 0.95
    grammar: str | None = None
    model: str | None = None  # a GGUF file for this template only; None: the world's model
    answer_prefix: str = ""  # written for the model at the start of its answer ("grade="): fewer tokens to generate
    choices: tuple[str, ...] = ()  # scored, not generated: the answer is the likeliest of these single tokens

    @property
    def user_head(self) -> str:
        """The user message up to its first placeholder: the same in every prompt of this template, so a worker
        keeps it evaluated with the system prompt ("" when a literal brace comes first)."""
        head = self.user.split("{", 1)[0]
        return "" if "}" in head else head

    @property
    def variables(self) -> set[str]:
        return placeholders(self.system) | placeholders(self.user)

    def messages(self, **values: Any) -> list[dict[str, str]]:
        """The chat messages for these values. Every placeholder needs a value; no value may be left over."""
        missing = self.variables - values.keys()
        extra = values.keys() - self.variables
        if missing or extra:
            raise TemplateError(f"template {self.id}: missing {sorted(missing)}, unknown {sorted(extra)}")
        strings = {k: str(v) for k, v in values.items()}
        return [{"role": "system", "content": fill(self.system, strings)},
                {"role": "user", "content": fill(self.user, strings)}]


def load_template(path: str | Path) -> PromptTemplate:
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: {exc}") from None
    unknown = doc.keys() - KNOWN_KEYS
    if unknown:
        raise TemplateError(f"{path}: unknown keys {sorted(unknown)} (known: {sorted(KNOWN_KEYS)})")
    for key in ("id", "system", "user"):
        if not isinstance(doc.get(key), str) or not doc[key].strip():
            raise TemplateError(f"{path}: needs a non-empty string {key!r}")
    grammar = doc.get("grammar")
    if "grammar_file" in doc:
        try:
            grammar = (path.parent / doc["grammar_file"]).read_text()
        except OSError as exc:
            raise TemplateError(f"{path}: grammar_file: {exc}") from None
    model = str((path.parent / doc["model"]).resolve()) if "model" in doc else None
    choices = doc.get("choices", [])
    if not isinstance(choices, list) or not all(isinstance(c, str) and c for c in choices) \
            or len(set(choices)) != len(choices):
        raise TemplateError(f"{path}: choices must be a list of different, non-empty strings")
    if choices and grammar:
        raise TemplateError(f"{path}: a template is scored (choices) or generated (grammar), not both")
    try:
        return PromptTemplate(
            id=doc["id"], system=doc["system"], user=doc["user"], max_tokens=int(doc.get("max_tokens", 64)),
            temperature=float(doc.get("temperature", 0.0)), top_k=int(doc.get("top_k", 40)),
            top_p=float(doc.get("top_p", 0.95)), grammar=grammar, model=model,
            answer_prefix=str(doc.get("answer_prefix", "")), choices=tuple(choices),
        )
    except (TypeError, ValueError) as exc:
        raise TemplateError(f"{path}: {exc}") from None


# llama-cpp-python's LlamaGrammar only stores the text; llama.cpp parses it when a sampler is built, and an
# invalid grammar gives a NULL sampler that crashes generation. So the probe builds that sampler.
GRAMMAR_PROBE = """
import sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], vocab_only=True, verbose=False)
sampler = llama_cpp.llama_sampler_init_grammar(llm._model.vocab, sys.stdin.read().encode(), b"root")
if not sampler:
    sys.exit(3)
llama_cpp.llama_sampler_free(sampler)
"""


def validate_grammar(grammar: str, model_path: str) -> str | None:
    """None if llama.cpp accepts the GBNF grammar, else why not. Runs in a throwaway child process: an invalid
    grammar can crash llama.cpp outright, and a world with one must fail to load, not take the server down."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", GRAMMAR_PROBE, model_path], input=grammar, capture_output=True,
                            text=True, timeout=60)
    if result.returncode == 0:
        return None
    if result.returncode == 3:
        lines = [ln for ln in result.stderr.splitlines() if "parse" in ln.lower() or "error" in ln.lower()]
        return "llama.cpp cannot parse it" + (f": {lines[0].strip()}" if lines else "")
    if result.returncode < 0:
        return f"llama.cpp crashed parsing it (signal {-result.returncode})"
    return result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit code {result.returncode}"


def validate_choices(choices: tuple[str, ...], model_path: str) -> str | None:
    """None if every choice is one token of the model's vocabulary (what scoring compares), else which are not."""
    from npcs.inference.renderer import PromptRenderer

    try:  # the model file itself is checked (sha256 and all) once, by the engine that runs it
        renderer = PromptRenderer.vocab_only(model_path)
    except ValueError as exc:
        return str(exc)
    bad = [c for c in choices if len(renderer.tokens(c)) != 1]
    return f"{bad} are not single tokens of {Path(model_path).name}" if bad else None


def load_templates(folder: str | Path, model_path: str | None) -> dict[str, PromptTemplate]:
    """Every *.toml in folder, by id; each grammar checked against the vocabulary of the model it will run on
    (its own, or model_path; model_path None: a server without inference, where nothing is checked against a
    model). No folder, no templates."""
    folder = Path(folder)
    out: dict[str, PromptTemplate] = {}
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        template = load_template(path)
        if template.id in out:
            raise TemplateError(f"{path}: template id {template.id!r} is used twice")
        if template.model and model_path is not None:
            from npcs.inference.models import ModelError, check_model

            try:
                check_model(template.model)
            except ModelError as exc:
                raise TemplateError(f"{path}: {exc}") from None
        if template.grammar and model_path is not None:
            why = validate_grammar(template.grammar, template.model or model_path)
            if why:
                raise TemplateError(f"{path}: grammar rejected: {why}")
        if template.choices and model_path is not None:
            why = validate_choices(template.choices, template.model or model_path)
            if why:
                raise TemplateError(f"{path}: choices rejected: {why}")
        out[template.id] = template
    return out
