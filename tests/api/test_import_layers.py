"""The package's layers, enforced (issue 25): every import, at the top of a module or inside a function, goes to the
same layer or a lower one, and no modules import each other in a circle. Imports under ``if TYPE_CHECKING:`` are
types only and do not count.

From the top: the package's entry points, the widgets, the paper's figures, the kernels (passes over many
pictures), the probe (one network: layers, fields, reverse rules, reconstructions), the model zoo and weight files
(what a probe is built from; they never need one), picture sets, single pictures and the small helpers, errors."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "cnnviz_widgets"

LAYERS: list[tuple[str, ...]] = [
    ("cnnviz_widgets", "cnnviz_widgets.mine_cli"),
    ("cnnviz_widgets.widgets",),
    ("cnnviz_widgets.figures",),
    ("cnnviz_widgets.kernels",),
    ("cnnviz_widgets.probe",),
    ("cnnviz_widgets.models",),
    ("cnnviz_widgets.imageset",),
    ("cnnviz_widgets.images", "cnnviz_widgets.decode", "cnnviz_widgets.resize", "cnnviz_widgets.display", "cnnviz_widgets.checks", "cnnviz_widgets.precision"),
    ("cnnviz_widgets.errors", "cnnviz_widgets.catalog"),
    ("cnnviz_widgets._ipython",),
]


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the package under ``root`` by its dotted name (a package by its own name)."""
    out = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _type_only(tree: ast.Module) -> set[int]:
    """Line numbers of imports under ``if TYPE_CHECKING:``."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            for inner in node.body:
                lines.update(n.lineno for n in ast.walk(inner) if isinstance(n, (ast.Import, ast.ImportFrom)))
    return lines


def imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[int, str]]:
    """(line, module) for each module of the package that ``name`` imports, anywhere in its code."""
    tree = ast.parse(path.read_text())
    skip = _type_only(tree)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or node.lineno in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
            targets = subs if len(subs) == len(node.names) else [target, *subs]
        out += [(node.lineno, t) for t in targets if t in modules and t != name]
    return out


def layer_of(name: str) -> int | None:
    best = None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            inside = name.startswith(p + ".") and p != "cnnviz_widgets"  # the root is itself only
            if (name == p or inside) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    return None if best is None else best[0]


def violations(root: Path) -> list[str]:
    """What breaks the layering in the package under ``root``: a module with no layer, an import upwards, a cycle."""
    modules = module_names(root)
    edges = {name: imports(name, path, modules) for name, path in modules.items()}
    found = [f"{name} has no layer: add it to LAYERS in tests/api/test_import_layers.py" for name in modules
             if layer_of(name) is None]
    for name, targets in edges.items():
        for line, target in targets:
            a, b = layer_of(name), layer_of(target)
            if a is not None and b is not None and b < a:
                found.append(f"{modules[name].relative_to(root.parent)}:{line} imports {target}, a layer above it "
                             f"({LAYERS[b][0]} is above {LAYERS[a][0]})")
    # cycles among modules (Tarjan's strongly connected components)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for _, w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(f"import cycle: {' -> '.join(sorted(part))}")

    for v in modules:
        if v not in index:
            visit(v)
    return found


def test_the_package_keeps_its_layers_and_has_no_import_cycle():
    assert violations(ROOT) == []


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "cnnviz_widgets"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


BASE = {"__init__.py": "", "errors.py": "", "kernels/__init__.py": "", "widgets/__init__.py": "",
        "probe/__init__.py": "", "probe/probe.py": "from ..errors import x\n"}


@pytest.mark.parametrize("kernel, message", [
    ("from ..widgets import DeconvExplorer\n", "kernels/a.py:1 imports cnnviz_widgets.widgets, a layer above it"),
    ("def f():\n    from ..widgets import y\n", "kernels/a.py:2 imports cnnviz_widgets.widgets, a layer above it"),
    ("import cnnviz_widgets.widgets\n", "kernels/a.py:1 imports cnnviz_widgets.widgets"),
])
def test_the_contract_fails_when_a_kernel_imports_a_widget(tmp_path, kernel, message):
    root = _package(tmp_path, {**BASE, "kernels/a.py": kernel})
    assert any(message in v for v in violations(root)), violations(root)


def test_the_contract_fails_on_a_cycle_hidden_in_a_function_and_not_on_types(tmp_path):
    root = _package(tmp_path, {**BASE, "probe/probe.py": "def f():\n    from .other import g\n",
                               "probe/other.py": "from .probe import f\n"})
    assert violations(root) == ["import cycle: cnnviz_widgets.probe.other -> cnnviz_widgets.probe.probe"]
    root = _package(tmp_path, {**BASE, "probe/probe.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                                         "    from .other import g\n",
                               "probe/other.py": "from .probe import f\n", "stray.py": ""})
    assert violations(root) == ["cnnviz_widgets.stray has no layer: add it to LAYERS in tests/api/test_import_layers.py"]
