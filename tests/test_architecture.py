"""The structure the docs describe (docs/architecture.md), checked: layers, no import cycles, one reducer table.

Imports are read from the source (ast), so a lazy import inside a function, or one under `if TYPE_CHECKING:`,
counts as much as one at the top: a cycle in the types is still a cycle to a reader. Package `__init__` files are
left out of the cycle check: importing `a.b` runs `a/__init__.py`, which imports nothing here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("server", "npcs", "client")
# Lower layers never reach up: what each may import from the project (its own package always).
LAYERS = {
    "server.core": ("server.core",),
    "server.world": ("server.core", "server.world"),
    "server.economy": ("server.core", "server.economy"),
    "server.net": ("server.core", "server.world", "server.economy", "server.net"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for name in names:
            if name in modules:
                found.add(name)
    assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree)), f"{path}: relative import"
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {m: imports_of(p, modules) - {m} for m, p in modules.items()}


def test_lower_layers_never_import_npcs_client_or_the_layers_above(graph):
    wrong = []
    for module, deps in graph.items():
        layer = next((layer for layer in LAYERS if module == layer or module.startswith(layer + ".")), None)
        if layer is None:
            continue
        for dep in deps:
            if not any(dep == ok or dep.startswith(ok + ".") for ok in LAYERS[layer]) and dep not in PACKAGES:
                wrong.append(f"{module} imports {dep}")
    assert not wrong, "\n".join(sorted(wrong))


def test_there_are_no_import_cycles(graph):
    deps = {m: {d for d in ds if not (ROOT / d.replace(".", "/") / "__init__.py").is_file()}
            for m, ds in graph.items()}
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(m: str) -> None:  # Tarjan's strongly connected components
        index[m] = low[m] = counter[0]
        counter[0] += 1
        stack.append(m)
        on_stack.add(m)
        for d in sorted(deps.get(m, ())):
            if d not in index:
                visit(d)
                low[m] = min(low[m], low[d])
            elif d in on_stack:
                low[m] = min(low[m], index[d])
        if low[m] == index[m]:
            scc = []
            while True:
                x = stack.pop()
                on_stack.discard(x)
                scc.append(x)
                if x == m:
                    break
            if len(scc) > 1:
                cycles.append(sorted(scc))

    for m in sorted(deps):
        if m not in index:
            visit(m)
    assert not cycles, cycles


def test_no_module_is_much_over_400_lines():
    long = {m: n for m, p in project_modules().items() if (n := len(p.read_text().splitlines())) > 420}
    assert not long, long


def test_every_error_code_is_declared_used_through_code_and_documented():
    """protocol.Code is the registry: product code names codes as Code.X (never as bare strings, which a typo
    would make a new, undocumented code), every Code.X it names exists, and docs/protocol.md explains each."""
    from server.core.protocol import Code

    declared = {k: v for k, v in vars(Code).items() if k.isupper()}
    assert all(k == v for k, v in declared.items())
    named, bare = set(), []
    for module, path in project_modules().items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Code":
                named.add(node.attr)
            elif (isinstance(node, ast.Constant) and node.value in declared and module != "server.core.protocol"
                  and not module.startswith("client")):
                bare.append(f"{module}:{node.lineno}: {node.value!r}")
    assert named - declared.keys() == set(), f"Code.X used but not declared: {sorted(named - declared.keys())}"
    assert not bare, "use Code.X, not a bare string:\n" + "\n".join(bare)
    docs = (ROOT / "docs" / "protocol.md").read_text()
    table = docs[docs.index("## Error codes"):docs.index("## Limits and closes")]
    missing = [c for c in declared if f"`{c}`" not in table]
    assert not missing, f"error codes missing from docs/protocol.md's table: {missing}"


def test_every_logged_actor_of_the_default_world_has_its_reducer(tmp_path):
    """The reducer table (server/reducers.py) is what replay uses; each logged actor a world runs must be in it,
    with the reducer the actor itself applies."""
    import asyncio

    from server.app import Server
    from server.core.logged import LoggedActor
    from server.reducers import state_for
    from server.world.reader import load_world

    async def run() -> list[tuple[str, type, type]]:
        server = Server(load_world(ROOT / "worlds" / "llama-land"), f"sqlite:///{tmp_path / 'w.db'}", port=0,
                        admin_key_file=tmp_path / "key")
        await server.start()
        try:
            return [(a.id, type(a.state), type(state_for(a.id))) for a in server.runtime.actors if isinstance(a, LoggedActor)]
        finally:
            await server.stop()

    logged = asyncio.run(run())
    assert {i.split(":")[0] for i, _, _ in logged} >= {"accounts", "room", "token", "fed", "oracle"}
    assert [(i, live) for i, live, _ in logged] == [(i, fresh) for i, _, fresh in logged]
