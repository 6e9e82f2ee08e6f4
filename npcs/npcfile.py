"""NPC files: what an NPC is, as data. One TOML file per NPC in the world's `npcs/` folder; the file name (without
.toml) is the NPC's id, and a Tiled object of that name in a map's `npcs` layer places it.

    name = "Llama King"                 # what players see
    kind = "king"                       # king | fed | joker | oracle | wanderer: which behaviour it runs
    persona = "You are the Llama King…" # fills {persona} in its templates
    reach = 8                           # tiles: how close a player must stand to ask it something
    committee = ["hawk", "dove", "chair"]  # king only: the Fed llamas that grade (empty: the King grades alone)
    [templates]                         # role -> template id (templates/*.toml)
    announce = "king-announce@1"
    [model]                             # optional overrides of the templates' model options
    temperature = 0.0
    [lines]                             # scripted lines (no inference): {player} is filled in
    ack = ["Give me a moment, {player}."]
    [economy]                           # this kind's numbers, checked against the ranges below
    offering = 1                        # amounts are in whole tokens, up to 12 decimals
    [judge]                             # king only: how verdicts are reached (npcs/actors/judge.py)
    examples = "judge/examples.toml"    # graded example petitions, relative to the world folder
    committee_weight = 0.35             # the committee's share of the grade; the examples have the rest

Adding an NPC of an existing kind is a new file (and an object in a map); no Python.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from server.core.units import show

from npcs.kinds import GRADING_ROLES, KINDS
from npcs.actors.judge import ExampleError, ExampleIndex, JudgeConfig, load_examples
from npcs.inference.templates import PromptTemplate



class NpcError(Exception):
    """A broken NPC file; the message names the file and the field."""


MODEL_KEYS = {"max_tokens", "temperature", "top_k", "top_p", "grammar"}
TOP_KEYS = {"name", "kind", "persona", "reach", "committee", "templates", "model", "lines", "economy", "judge",
            "listens"}
JUDGE_KEYS = {"examples": str, "committee_weight": float, "neighbours": int, "trick_margin": float}


@dataclass(frozen=True)
class NpcSpec:
    id: str
    path: Path
    name: str
    kind: str
    persona: str
    reach: int
    templates: dict[str, PromptTemplate]  # role -> template (with this NPC's model options applied)
    lines: dict[str, list[str]] = field(default_factory=dict)
    economy: dict[str, Any] = field(default_factory=dict)
    committee: list[str] = field(default_factory=list)
    judge: tuple[JudgeConfig, ExampleIndex | None] = (JudgeConfig(), None)  # a king's: see [judge]
    listens: tuple[str, ...] = ()  # a listening kind's rooms besides its own, whose chat it hears

    def line(self, role: str, index: int, **values: str) -> str:
        options = self.lines.get(role) or [""]
        text = options[index % len(options)]
        for key, value in values.items():
            text = text.replace("{" + key + "}", value)
        return text


def load_npc(path: Path, templates: dict[str, PromptTemplate], default_reach: int) -> NpcSpec:
    def bad(what: str) -> NpcError:
        return NpcError(f"{path}: {what}")

    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise bad(str(exc)) from None
    unknown = doc.keys() - TOP_KEYS
    if unknown:
        raise bad(f"unknown field {sorted(unknown)[0]!r} (known: {', '.join(sorted(TOP_KEYS))})")
    kind = doc.get("kind")
    if kind not in KINDS:
        raise bad(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    for key in ("name", "persona"):
        if not isinstance(doc.get(key), str) or not doc[key].strip():
            raise bad(f"needs a non-empty string {key!r}")
    reach = doc.get("reach", default_reach)
    if isinstance(reach, bool) or not isinstance(reach, int) or not 1 <= reach <= 100:
        raise bad(f"reach must be a whole number of tiles from 1 to 100, got {reach!r}")
    listens = doc.get("listens", [])
    if not isinstance(listens, list) or not all(isinstance(r, str) and r for r in listens):
        raise bad("listens is a list of room names, like [\"plaza\", \"stage\"]")
    if listens and not KINDS[kind].listens:
        raise bad(f"a {kind} does not listen to rooms: listens is for kinds that do (trader)")
    return NpcSpec(
        listens=tuple(listens),
        id=path.stem, path=path, name=doc["name"].strip(), kind=kind, persona=doc["persona"].strip(), reach=reach,
        templates=_templates(doc, kind, templates, bad, path.stem), lines=_lines(doc.get("lines", {}), kind, bad),
        economy=_economy(doc.get("economy", {}), kind, bad), committee=_committee(doc, kind, bad),
        judge=_judge(doc.get("judge"), kind, path.parent.parent, bad),
    )


def _templates(doc: dict[str, Any], kind: str, known: dict[str, PromptTemplate], bad: Callable, npc_id: str) -> dict:
    table, options = doc.get("templates", {}), doc.get("model", {})
    if not isinstance(table, dict) or not isinstance(options, dict):
        raise bad("[templates] and [model] must be tables")
    if options.keys() - MODEL_KEYS:
        raise bad(f"[model] has unknown field {sorted(options.keys() - MODEL_KEYS)[0]!r} "
                  f"(known: {', '.join(sorted(MODEL_KEYS))})")
    out = {}
    roles = KINDS[kind].roles
    for role, allowed in roles.items():
        tid = table.get(role)
        if tid not in known:
            raise bad(f"[templates].{role} must name a template in templates/ (have: {', '.join(sorted(known))}), "
                      f"got {tid!r}")
        template = known[tid]
        if role in GRADING_ROLES and template.choices and not set(template.choices) <= set("012345"):
            raise bad(f"template {tid} is scored with choices {list(template.choices)}; a {role} needs grades 0-5")
        extra = template.variables - allowed
        if extra:
            raise bad(f"template {tid} uses {{{sorted(extra)[0]}}}, which a {kind}'s {role} does not have "
                      f"(it has: {', '.join(sorted(allowed))})")
        if options:
            try:
                template = replace(template, id=f"{template.id}/{npc_id}", **options)
            except TypeError as exc:
                raise bad(f"[model]: {exc}") from None
        out[role] = template
    if table.keys() - roles.keys():
        raise bad(f"[templates].{sorted(table.keys() - roles.keys())[0]} is not a role of a {kind} "
                  f"(roles: {', '.join(roles) or 'none'})")
    return out


def _lines(table: Any, kind: str, bad: Callable) -> dict[str, list[str]]:
    if not isinstance(table, dict):
        raise bad("[lines] must be a table of lists of strings")
    out = {}
    for role, lines in table.items():
        if role not in KINDS[kind].lines:
            raise bad(f"[lines].{role} is not used by a {kind} "
                      f"(used: {', '.join(sorted(KINDS[kind].lines)) or 'none'})")
        if isinstance(lines, str):
            lines = [lines]
        if not isinstance(lines, list) or not lines or not all(isinstance(x, str) and x.strip() for x in lines):
            raise bad(f"[lines].{role} must be a non-empty list of non-empty strings")
        out[role] = lines
    return out


def _economy(table: Any, kind: str, bad: Callable) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise bad("[economy] must be a table")
    schema = KINDS[kind].economy
    for key in table:
        if key not in schema:
            raise bad(f"[economy].{key} is not a setting of a {kind} (settings: {', '.join(schema) or 'none'})")
    out = {}
    for key, setting in schema.items():
        raw = table.get(key)
        if raw is None:
            out[key] = setting.default
            continue
        try:
            value = setting.parse(raw)
        except (ValueError, TypeError):
            value = None
        if value is None or not setting.lowest <= value <= setting.highest:
            shown = show if setting.is_amount else str
            raise bad(f"[economy].{key} must be from {shown(setting.lowest)} to {shown(setting.highest)}, "
                      f"got {raw!r}")
        out[key] = value
    for low, high in (("petition_min", "petition_max"), ("min_bet", "max_bet")):
        if low in out and out[low] > out[high]:
            raise bad(f"[economy].{low} is more than [economy].{high}")
    return out


def _judge(table: Any, kind: str, world: Path, bad: Callable) -> tuple[JudgeConfig, ExampleIndex | None]:
    if table is None:
        return JudgeConfig(), None
    if kind != "king" or not isinstance(table, dict):
        raise bad("[judge] is a table, and only a king has one")
    for key, value in table.items():
        want = JUDGE_KEYS.get(key)
        if want is None:
            raise bad(f"[judge].{key} is not a judge setting (settings: {', '.join(JUDGE_KEYS)})")
        if isinstance(value, bool) or not isinstance(value, (int, float) if want is float else want):
            raise bad(f"[judge].{key} must be a {want.__name__}, got {value!r}")
    config = JudgeConfig(committee_weight=float(table.get("committee_weight", JudgeConfig.committee_weight)),
                         k=table.get("neighbours", JudgeConfig.k),
                         trick_margin=float(table.get("trick_margin", JudgeConfig.trick_margin)))
    if not 0.0 <= config.committee_weight <= 1.0 or not 1 <= config.k <= 50 or not 0.0 <= config.trick_margin <= 1:
        raise bad("[judge]: committee_weight and trick_margin are from 0 to 1, neighbours from 1 to 50")
    if "examples" not in table:
        return config, None
    try:
        return config, ExampleIndex(load_examples(world / table["examples"]), k=config.k)
    except ExampleError as exc:
        raise bad(f"[judge].examples: {exc}") from None


def _committee(doc: dict[str, Any], kind: str, bad: Callable) -> list[str]:
    members = doc.get("committee", [])
    if members and kind != "king":
        raise bad("only a king has a committee")
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise bad("committee must be a list of NPC ids (file names in npcs/)")
    return members


def load_npcs(folder: Path, templates: dict[str, PromptTemplate], default_reach: int) -> dict[str, NpcSpec]:
    """Every npcs/*.toml, checked: kinds, templates and their variables, economy ranges, committees."""
    npcs = {p.stem: load_npc(p, templates, default_reach) for p in sorted(folder.glob("*.toml"))} \
        if folder.is_dir() else {}
    for npc in npcs.values():
        for member in npc.committee:
            if member not in npcs or npcs[member].kind != "fed":
                raise NpcError(f"{npc.path}: committee member {member!r} is not an NPC of kind fed in {folder}")
    return npcs
