"""The house rules, read off the code's own imports (an AST walk of every module).

- The domain knows neither Celery nor HTTP: no module of ``newsletter/`` outside ``api/`` and
  ``cli/`` imports ``worker``, ``celery``, ``kombu``, ``fastapi`` or ``starlette``.
- ``transports/`` imports nothing of ``newsletter`` but itself.
- No import circles between the modules of ``newsletter/``: every import counts, also one made
  inside a function or for type checking only (a package's ``__init__`` is a module of its own).
- No module of ``newsletter/`` is longer than 400 lines; each wing's ``__init__`` names its
  public verbs in ``__all__``.
- README's map ("How it is built") names every module, and only modules that exist.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "newsletter"
WINGS = (
    "content",
    "audience",
    "mail",
    "transports",
    "sending",
    "access",
    "webhooks",
    "outbound",
    "analytics",
    "autopilot",
)
EDGES_ONLY = ("newsletter.api", "newsletter.cli")  # where HTTP and Celery may be named
FRAMEWORKS = ("worker", "celery", "kombu", "fastapi", "starlette")
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def imports(path: Path, *, top_level_only: bool) -> Iterator[str]:
    """Every module an import statement of ``path`` names (``from a import b``: a.b if a
    module, else a)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                yield candidate if candidate in MODULES else node.module


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_the_domain_imports_neither_celery_nor_http() -> None:
    offenders = [
        f"{name} imports {target}"
        for name, path in MODULES.items()
        if not any(under(name, edge) for edge in EDGES_ONLY)
        for target in imports(path, top_level_only=False)
        if any(under(target, framework) for framework in FRAMEWORKS)
    ]
    assert offenders == []


def test_transports_import_nothing_of_the_domain() -> None:
    offenders = [
        f"{name} imports {target}"
        for name, path in MODULES.items()
        if under(name, "newsletter.transports")
        for target in imports(path, top_level_only=False)
        if under(target, "newsletter") and not under(target, "newsletter.transports")
    ]
    assert offenders == []


def _graph() -> dict[str, set[str]]:
    return {
        name: {t for t in imports(path, top_level_only=False) if t in MODULES and t != name}
        for name, path in MODULES.items()
    }


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_there_are_no_import_circles() -> None:
    assert _circles(_graph()) == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_longer_than_400_lines(name: str) -> None:
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)} has {lines} lines"


@pytest.mark.parametrize("wing", WINGS)
def test_each_wing_names_its_public_verbs(wing: str) -> None:
    init = PACKAGE / wing / "__init__.py"
    tree = ast.parse(init.read_text(encoding="utf-8"))
    names = [
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    ]
    assert "__all__" in names, f"newsletter/{wing}/__init__.py has no __all__"


@pytest.mark.parametrize("wing", WINGS)
def test_a_wing_exports_no_name_that_is_also_one_of_its_modules(wing: str) -> None:
    # `from newsletter.sending import progress` must stay the module, not a function of it
    modules = {p.stem for p in (PACKAGE / wing).glob("*.py")}
    namespace: dict[str, object] = {}
    exec(f"from newsletter.{wing} import __all__", namespace)
    exported = set(namespace["__all__"])  # type: ignore[arg-type]
    assert exported & modules <= {n for n in exported & modules if _is_module(wing, n)}


def _is_module(wing: str, name: str) -> bool:
    import importlib

    return getattr(importlib.import_module(f"newsletter.{wing}"), name).__name__ == (
        f"newsletter.{wing}.{name}"
    )


@pytest.mark.parametrize("entry", [f"newsletter.{w}" for w in WINGS] + ["worker.tasks"])
def test_each_wing_imports_on_its_own(entry: str) -> None:
    # in a fresh interpreter: a wing entered first must not meet another half-initialised
    done = subprocess.run(
        [sys.executable, "-c", f"import {entry}"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


def readme_map() -> set[str]:
    """The paths the README's map ("How it is built") names, read off its indentation."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## How it is built", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    stack: list[tuple[int, str]] = []
    paths: set[str] = set()
    for line in block.splitlines():
        name = line.strip().split("  ", 1)[0]
        depth = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= depth:
            stack.pop()
        path = "".join(part for _, part in stack) + name
        paths.add(path)
        if name.endswith("/"):
            stack.append((depth, name))
    return paths


def test_the_readme_map_names_every_module_and_no_other() -> None:
    named = readme_map()
    modules = {
        str(p.relative_to(ROOT))
        for top in (PACKAGE, ROOT / "worker")
        for p in top.rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    }
    modules.add("newsletter/cli/__init__.py")  # the one package face that does a job
    listed = {p for p in named if p.endswith(".py")}
    assert modules - listed == set(), "modules missing from README's map"
    assert listed - modules == set(), "README's map names modules that do not exist"
