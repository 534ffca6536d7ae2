"""The layout holds the architecture (docs/architecture.md): folders by job, imports only
downwards, no import cycle, modules small enough to read in one sitting.

The imports are read with `ast`, function-level ones included (a cycle hidden inside a function
is still a cycle); only those under `if TYPE_CHECKING:` are left out, since they never run.
Importing a module also runs its packages' `__init__`, so each import counts as one of every
package above it too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("signalosd", "signalos_cli")
MAX_LINES = 400

# Each part of the daemon and what it may import from the daemon. A part is a module or a
# folder, named by its dotted path; the longest matching name wins. Parts on one line of the
# docs' direction (`http`, `ws`, `web`, `ops`) may import each other, as long as no cycle forms.
FOUNDATION = {
    "signalosd",
    "signalosd.models",
    "signalosd.errors",
    "signalosd.clock",
    "signalosd.strict_json",
    "signalosd.config",
    "signalosd.keys",
}
STORE = FOUNDATION | {"signalosd.store"}
DOMAIN = STORE | {"signalosd.domain", "signalosd.outbox"}
MIDDLE = DOMAIN | {"signalosd.auth", "signalosd.live"}
EDGE = MIDDLE | {
    "signalosd.alerts",
    "signalosd.http",
    "signalosd.ws",
    "signalosd.web",
    "signalosd.ops",
}
ALLOWED: dict[str, set[str]] = {
    "signalosd": set(),
    "signalosd.models": {"signalosd.models", "signalosd.strict_json"},
    "signalosd.errors": set(),
    "signalosd.clock": set(),
    "signalosd.strict_json": set(),
    "signalosd.config": {"signalosd.models", "signalosd.clock"},
    # Its imports of the types it keys are for the type checker only (see keys.py).
    "signalosd.keys": set(),
    "signalosd.store": STORE,
    "signalosd.store.sqlite": STORE,
    "signalosd.store.open": STORE,
    "signalosd.domain": DOMAIN,
    "signalosd.outbox": DOMAIN,
    "signalosd.auth": MIDDLE,
    "signalosd.live": MIDDLE,
    # Outgoing webhooks: over the store, domain and live parts; only the edge imports them.
    "signalosd.alerts": MIDDLE | {"signalosd.alerts"},
    "signalosd.http": EDGE,
    "signalosd.ws": EDGE,
    "signalosd.web": EDGE,
    "signalosd.ops": EDGE | {"signalosd.app"},
    "signalosd.app": EDGE | {"signalosd.app"},
    "signalosd.__main__": EDGE | {"signalosd.app"},
    # The CLI shares the daemon's vocabulary and log format, nothing that runs the daemon.
    "signalos_cli": {
        "signalos_cli",
        "signalosd",
        "signalosd.models",
        "signalosd.clock",
        "signalosd.ops.logs",
        "signalosd.ops.logfmt",
    },
}

# Only these reach past the store interface into its SQLite implementation: to open it.
SQLITE_USERS = {"signalosd.store.sqlite", "signalosd.store.open"}

# Third-party modules some parts must never import.
NO_AIOHTTP = ("signalosd.models", "signalosd.domain", "signalosd.store", "signalosd.errors")
ONLY_SQLITE3 = "signalosd.store.sqlite"
# The desktop agent is its own program; its journal of executed commands is its own SQLite file.
AGENT_JOURNAL = "signalos_cli.agent.journal"


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, at any depth."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _imports_in(child)
            continue
        yield from _imports_in(node)


def _imports_in(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    else:
        yield from _imports(node)


def _with_packages(name: str) -> Iterator[str]:
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        yield ".".join(parts[:i])


def imported(name: str, path: Path) -> tuple[set[str], set[str]]:
    """(our modules `name` imports, with the packages they run; top-level third-party names)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    mine = set(_with_packages(name))
    ours: set[str] = set()
    others: set[str] = set()
    for node in _imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module]
            # `from package import module` imports that module
            targets += [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in MODULES]
        for target in targets:
            if target.split(".")[0] in PACKAGES:
                # its own packages are running already: importing them is no new edge
                ours.update(m for m in _with_packages(target) if m in MODULES and m not in mine)
            else:
                others.add(target.split(".")[0])
    return ours, others


GRAPH = {name: imported(name, path) for name, path in MODULES.items()}


def _within(name: str, part: str) -> bool:
    """Whether `name` is `part` or inside it. The daemon's root package stands for its own
    `__init__` only (the version), not for everything under it."""
    return name == part or (part != "signalosd" and name.startswith(part + "."))


def part_of(name: str) -> str:
    """The longest key of ALLOWED that is `name` or a package above it."""
    for candidate in sorted(ALLOWED, key=len, reverse=True):
        if name == candidate or name.startswith(candidate + "."):
            return candidate
    raise AssertionError(f"{name} belongs to no part of the layout: add it to ALLOWED")


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v][0]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_function_level_imports_included() -> None:
    assert _cycles() == []


def test_imports_only_go_down_the_layers() -> None:
    wrong = []
    for name, (ours, _) in sorted(GRAPH.items()):
        part = part_of(name)
        for target in sorted(ours):
            allowed = ALLOWED[part]
            # a package above an allowed module runs on the way to it
            if not any(_within(target, a) or a.startswith(target + ".") for a in allowed):
                wrong.append(f"{name} imports {target}")
            elif part_of(target) == "signalosd.store.sqlite" and part_of(name) not in SQLITE_USERS:
                wrong.append(f"{name} imports {target}")  # use the store interface
    assert wrong == []


def test_only_the_sqlite_store_imports_sqlite3() -> None:
    wrong = [
        name
        for name, (_, others) in GRAPH.items()
        if "sqlite3" in others and not name.startswith(ONLY_SQLITE3) and name != AGENT_JOURNAL
    ]
    assert wrong == []


def test_models_domain_and_store_never_import_aiohttp() -> None:
    wrong = [
        name
        for name, (_, others) in GRAPH.items()
        if name.startswith(NO_AIOHTTP) and "aiohttp" in others
    ]
    assert wrong == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_fits_in_one_sitting(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)}: {lines} lines"


def test_the_walker_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The graph is only as good as the walker: a deferred import is an edge, a TYPE_CHECKING
    one is not."""
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from signalosd.app import create_app\n"
        "def f():\n"
        "    from signalosd.live import bus\n"
        "    import sqlite3\n"
    )
    ours, others = imported("signalosd.domain.m", source)
    assert "signalosd.live.bus" in ours
    assert "signalosd.app" not in ours
    assert "sqlite3" in others
