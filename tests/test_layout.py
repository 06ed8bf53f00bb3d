"""Where things live (README "Where things live"): the import graph of the hand-written packages.

Every ``import`` and ``from ... import`` in every module, at module level and inside functions, is read
from the source (not executed) and resolved to first-party modules. The test fails on
- an arrow into ``orchestrator`` from an operator package (``tso``, ``dso``, ``aggregator``, ``tno``) or
  from the shared core (``core``);
- an arrow from the shared core into an operator package, or between operator packages;
- any import cycle between modules;
- hand-written Python under ``protos/`` other than ``generate.py`` and the generated package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "tso", "dso", "aggregator", "tno", "orchestrator")
OPERATORS = ("tso", "dso", "aggregator", "tno")
GENERATED = ROOT / "protos" / "python" / "gridcoord"


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        base = ROOT / pkg
        if not base.is_dir():
            continue
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(path: Path, module: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """(imported name, line) for every import in ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            yield stem, node.lineno
            for alias in node.names:
                yield f"{stem}.{alias.name}", node.lineno


def _graph() -> dict[str, set[tuple[str, int]]]:
    modules = _modules()
    graph: dict[str, set[tuple[str, int]]] = {m: set() for m in modules}
    for mod, path in modules.items():
        for name, line in _imports(path, mod, path.name == "__init__.py"):
            # the longest first-party module the name refers to (``from a.b import c``: a.b.c if a module)
            parts = name.split(".")
            for n in range(len(parts), 0, -1):
                target = ".".join(parts[:n])
                if target in modules:
                    if target != mod and not mod.startswith(target + "."):
                        graph[mod].add((target, line))
                    break
    return graph


def _top(module: str) -> str:
    return module.split(".")[0]


def test_no_arrow_into_the_orchestrator_or_between_operators() -> None:
    bad = []
    for mod, targets in _graph().items():
        src = _top(mod)
        for target, line in sorted(targets):
            dst = _top(target)
            if src in (*OPERATORS, "core") and dst == "orchestrator":
                bad.append(f"{mod}:{line} imports {target} (nothing below the orchestrator may)")
            elif src == "core" and dst in OPERATORS:
                bad.append(f"{mod}:{line} imports {target} (the shared core imports no operator)")
            elif src in OPERATORS and dst in OPERATORS and src != dst:
                bad.append(f"{mod}:{line} imports {target} (operators never import each other)")
    assert not bad, "\n".join(bad)


def test_no_import_cycle() -> None:
    graph = {m: {t for t, _ in ts} for m, ts in _graph().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_graph_sees_imports_inside_functions() -> None:
    """The walk is not vacuous: the CLI imports the strategies only inside its command functions."""
    targets = {t for t, _ in _graph()["orchestrator.cli.main"]}
    assert "orchestrator.strategies" in targets and "core.case" in targets


def test_protos_holds_only_sources_the_generator_and_generated_code() -> None:
    python = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "protos").rglob("*.py"))
    hand_written = [p for p in python if p != "protos/generate.py"
                    and not p.startswith("protos/python/gridcoord/v1/") and p != "protos/python/gridcoord/__init__.py"]
    assert not hand_written, hand_written
    init = (GENERATED / "__init__.py").read_text()
    assert "Generated by protos/generate.py" in init
