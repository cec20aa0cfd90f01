"""The layering of reclab's modules (docs/architecture.md): no import cycles, no private helper
imported across modules, and what a stage kernel imports.

The import graph is read from the source with ``ast``: every ``import`` and ``from ... import``,
at module level or inside a function (a function-level import only hides a cycle until the
function runs). The root package ``reclab`` (the facade that re-exports everything) is not a node.
Importing ``reclab.models.base`` from outside ``reclab.models`` also runs the package's
``__init__``, so it counts as importing ``reclab.models`` too.
"""

import ast
import subprocess
import sys
from pathlib import Path

import reclab
from reclab.kernels import KERNEL_LAUNCHER

PACKAGE = Path(reclab.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, modules: dict[str, Path]):
    """(imported module, imported name or None) for every reclab import in ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield (submodule, None) if submodule in modules else (base, alias.name)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {name: set() for name in modules if name != "reclab"}
    for name, path in modules.items():
        if name == "reclab":
            continue
        for target, _ in _imports(path, modules):
            if not target.startswith("reclab.") or target not in modules:
                continue
            edges = {target}
            # Running a subpackage's module from outside runs the subpackage's __init__ first.
            parts = target.split(".")
            for depth in range(2, len(parts)):
                parent = ".".join(parts[:depth])
                if not (name == parent or name.startswith(parent + ".")):
                    edges.add(parent)
            graph[name] |= edges - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_imports_inside_functions():
    graph = _graph()
    # reclab.pipeline imports papermill and reclab.tracking only inside run_pipeline.
    assert "reclab.tracking" in graph["reclab.pipeline"]
    assert "reclab.models.base" in graph["reclab.models.als"]


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles among reclab's modules: " + "; ".join(
        " <-> ".join(cycle) for cycle in cycles)


def test_no_private_names_imported_across_modules():
    modules = _modules()
    crossings = []
    for name, path in modules.items():
        for target, imported in _imports(path, modules):
            if imported and imported.startswith("_") and target.startswith("reclab") and target != name:
                crossings.append(f"{name} imports {target}.{imported}")
    assert not crossings, "private helpers used outside their module (make them public in one " \
                          "shared module): " + "; ".join(crossings)


# Modules still longer than MAX_LINES, each being split (issue 16); the list only shrinks.
LONG_MODULES: set = set()   # modules allowed past the limit (none today); a list that only shrinks
MAX_LINES = 650   # "about 600": one screenful of a module's outline, its concern still one


def test_no_module_grows_past_about_600_lines():
    lengths = {name: len(path.read_text(encoding="utf-8").splitlines())
               for name, path in _modules().items()}
    long = sorted(f"{name} ({lines} lines)" for name, lines in lengths.items()
                  if lines > MAX_LINES and name not in LONG_MODULES)
    assert not long, f"modules longer than {MAX_LINES} lines (split them by concern): " + ", ".join(long)


# Imported by the stages that use them only (docs/architecture.md, "Layers"): together about half a
# second of every stage kernel's start.
STAGE_ONLY = ("skopt", "sklearn", "scipy.stats", "reclab.online")


def test_a_stage_kernel_imports_no_search_or_statistics_library_it_does_not_use():
    """What the train stage's first cells import, and its configuration checked (search spaces
    included), in a new interpreter: no scikit-optimize, scikit-learn, scipy.stats or stage 6."""
    code = ("import sys\n"
            "import pandas, numpy\n"
            "from matplotlib.figure import Figure\n"
            "from reclab import tracking\n"
            "from reclab.config import Config, make_model\n"
            "from reclab.pipeline import start_notebook\n"
            f"config = Config.load({str(PACKAGE.parent / 'params' / 'ml-100k.yaml')!r})\n"
            "make_model(config, config.model)\n"
            f"print(sorted(name for name in {STAGE_ONLY!r} if name in sys.modules))\n")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=300, check=True)
    assert completed.stdout.strip() == "[]", completed.stdout + completed.stderr[-2000:]


def test_the_stage_kernels_preload_no_search_or_statistics_library():
    """reclab/_kernel.py imports PRELOADED into every stage kernel before its first cell: only what
    every stage imports, never a library of STAGE_ONLY."""
    code = ("import sys, runpy\n"
            f"kernel = runpy.run_path({str(KERNEL_LAUNCHER)!r})\n"
            "kernel['preload']()\n"
            "assert all(name in sys.modules for name in kernel['PRELOADED'])\n"
            f"print(sorted(name for name in {STAGE_ONLY!r} if name in sys.modules))\n")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=300, check=True)
    assert completed.stdout.strip() == "[]", completed.stdout + completed.stderr[-2000:]
