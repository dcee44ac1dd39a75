"""The import graph of the ``varstruct`` package has no circles, and the run-dir modules sit at the
bottom of it (docs/README.md, "Layers").

The graph is built statically: each ``varstruct/**/*.py`` is parsed with :mod:`ast`; relative
imports are resolved; ``from X import Y`` is an edge to the module ``X.Y`` when that is a module,
else to ``X``. Two graphs are checked:

- **load time** (the acceptance): imports executed when a module is imported, i.e. top-level
  statements (also under ``if``/``try``/``with`` and in class bodies), without ``if
  TYPE_CHECKING:`` blocks and without function bodies (lazy imports).
- **all imports**: function bodies too. This catches the circles of design that lazy imports
  hide (two modules that each call into the other, like ``models.store`` and ``rundir`` did).

Importing ``pkg.sub`` executes ``pkg/__init__.py`` first, so an edge to ``pkg.sub`` is also an
edge to ``pkg`` and to every package above it -- except the packages the importing module is
itself in: Python has started executing those before the module's first line, so they are never
a new dependency (``pkg.a`` importing its sibling ``pkg.b`` does not depend on ``pkg/__init__``).
What does count is reading a name of the package itself: ``from . import X`` where ``X`` is not
a submodule is an edge to ``pkg``, a circle if ``pkg/__init__`` imports the importer.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "varstruct"


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for p in sorted(root.rglob("*.py")):
        parts = list(p.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(body: list[ast.stmt], lazy: bool):
    """The Import/ImportFrom nodes a module body executes (``lazy``: function bodies too)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if lazy:
                yield from _imports(node.body, lazy)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _imports(node.body, lazy)
            yield from _imports(node.orelse, lazy)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _imports(block, lazy)
        elif isinstance(node, (ast.With, ast.AsyncWith, ast.ClassDef, ast.For, ast.AsyncFor, ast.While)):
            yield from _imports(node.body, lazy)
            yield from _imports(getattr(node, "orelse", []), lazy)


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(root: Path = ROOT, lazy: bool = False) -> dict[str, set[str]]:
    """{module: the varstruct modules it imports} (see the module docstring for the rules)."""
    mods = _modules(root)
    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in _imports(ast.parse(path.read_text(), str(path)).body, lazy):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
                continue
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                src = ".".join(base + ([node.module] if node.module else []))
            else:
                src = node.module or ""
            for a in node.names:
                targets.add(f"{src}.{a.name}" if f"{src}.{a.name}" in mods else src)
        edges = set()
        for t in targets:
            if t not in mods:
                continue
            for m in (*_ancestors(t), t):
                if m in mods and m != name and (m == t or m not in _ancestors(name)):
                    edges.add(m)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (iterative depth-first search)."""
    state = {}  # 1 on the stack, 2 done
    for start in sorted(graph):
        if state.get(start):
            continue
        stack, path = [(start, iter(sorted(graph[start])))], [start]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(sorted(graph.get(nxt, ())))))
                path.append(nxt)
    return None


def test_no_circles_at_load_time():
    cycle = find_cycle(import_graph(lazy=False))
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_no_circles_counting_lazy_imports():
    cycle = find_cycle(import_graph(lazy=True))
    assert cycle is None, "import circle (through a function-level import): " + " -> ".join(cycle)


def test_the_graph_sees_circles(tmp_path):
    """The checker finds the kinds of circle it is meant to find."""
    pkg = tmp_path / "varstruct"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
                              "def g():\n    from . import a\n")
    (pkg / "sub" / "__init__.py").write_text("from .x import y\nfrom . import z\nNAME = 1\n")
    (pkg / "sub" / "x.py").write_text("from .z import w\ny = 1\n")
    (pkg / "sub" / "z.py").write_text("w = 1\n")
    (pkg / "c.py").write_text("import varstruct.sub.z\n")
    g = import_graph(pkg)
    assert g["varstruct.b"] == set() and g["varstruct.sub.x"] == {"varstruct.sub.z"}
    assert g["varstruct.c"] == {"varstruct.sub", "varstruct.sub.z"} and find_cycle(g) is None
    lazy = import_graph(pkg, lazy=True)
    assert "varstruct.a" in lazy["varstruct.b"]
    assert find_cycle(lazy) == ["varstruct.a", "varstruct.b", "varstruct.a"]
    (pkg / "sub" / "x.py").write_text("from . import NAME\ny = 1\n")  # reads the package's own name
    assert find_cycle(import_graph(pkg)) == ["varstruct.sub", "varstruct.sub.x", "varstruct.sub"]


# the modules at the bottom of the graph: the run-dir modules may import only these (and themselves)
BOTTOM = {"varstruct", "varstruct.errors", "varstruct.io", "varstruct.validate", "varstruct.runs",
          "varstruct.runs.layout", "varstruct.runs.lock", "varstruct.runs.weights"}


def test_run_dir_modules_import_nothing_above_them():
    for lazy in (False, True):
        g = import_graph(lazy=lazy)
        for name in ("varstruct.runs", "varstruct.runs.layout", "varstruct.runs.lock", "varstruct.runs.weights"):
            assert g[name] <= BOTTOM, f"{name} imports {sorted(g[name] - BOTTOM)}"


def test_run_dir_modules_do_not_import_torch():
    code = ("import sys, varstruct.runs.layout, varstruct.runs.lock, varstruct.runs.weights\n"
            "heavy = [m for m in ('torch', 'safetensors', 'xarray', 'pandas', 'filelock') if m in sys.modules]\n"
            "assert not heavy, heavy")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT.parent)
    assert r.returncode == 0, r.stderr


# docs/README.md "Layers": the folders (or top-level modules) each may import, besides its own
LAYERS = {
    "errors": set(),
    "validate": {"errors"}, "progress": {"errors"}, "ncread": {"errors"},
    "catalog": {"errors", "validate"}, "threads": {"errors", "validate"},
}
_LOW = {"errors", "validate", "progress", "ncread", "catalog", "threads", "resources", "tensors", "schema", "io",
        "devices", "varstruct"}
LAYERS.update({m: _LOW - {m} for m in ("resources", "tensors", "schema", "io", "devices")})
LAYERS.update({
    "runs": {"errors", "io"},
    "data": {"errors", "validate"},
    "models": _LOW | {"runs", "data"},
    "measures": _LOW | {"data"}, "metrics": _LOW | {"data"},
})
LAYERS["training"] = _LOW | {"runs", "data", "models", "measures", "metrics"}
LAYERS["importers"] = LAYERS["training"] | {"training"}
LAYERS["study"] = LAYERS["importers"]
LAYERS["plots"] = LAYERS["study"] | {"study", "importers"}
LAYERS["cli"] = LAYERS["plots"] | {"plots"}
LAYERS["__main__"] = {"cli"}


def _folder(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "varstruct"


def test_layers_as_documented():
    bad = []
    for m, deps in import_graph(lazy=True).items():
        f = _folder(m)
        allowed = LAYERS.get(f, set()) | {f, "varstruct"}
        bad += [f"{m} -> {d}" for d in sorted(deps) if _folder(d) not in allowed]
    assert not bad, "imports against the layers of docs/README.md: " + "; ".join(bad)
    assert set(LAYERS) | {"varstruct"} >= {_folder(m) for m in import_graph()}, "a folder without a layer"
