"""The layers of the README ("Layers"): each imports only the ones before it.

counting core -> zoo -> paper convention & reports -> training -> CLI. The zoo (``models/``
outside ``models/trainer/``) imports nothing from ``profiler``. Checked twice: statically,
every import statement of every module (function-level imports too); and at run time, each
layer's modules imported in a fresh interpreter, which must not load a later layer.

Inside the training layer, the trainer's subpackages are in order too (base -> data ->
pretrain -> distill -> superb -> study -> entry points), checked statically.

A dynamic import (``importlib.import_module``, ``__import__``, ``importlib.util``) hides an
arrow from the static check and from a reader, so each one is on DYNAMIC_IMPORTS with the
reason it must be dynamic; the lazy exports' ``_EXPORTS`` tables count as import arrows.
"""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("counting core", "zoo", "paper & reports", "training", "CLI")
# profiler modules of the paper layer; every other profiler module outside the training
# and CLI folders is counting core.
PAPER = {"columns", "conventions", "reference", "table", "formats", "reporting", "reproduction",
         "figure_data", "golden", "paper_storage", "figures", "measure", "calibration",
         "budgets", "sweep"}


def layer_of(module: str) -> int:
    parts = module.split(".")
    if parts[0] == "models":
        return LAYERS.index("training" if parts[1:2] == ["trainer"] else "zoo")
    assert parts[0] == "profiler", module
    second = parts[1] if len(parts) > 1 else ""
    if second in ("cli", "commands", "__main__"):
        return LAYERS.index("CLI")
    if second == "adapters":
        return LAYERS.index("training")
    return LAYERS.index("paper & reports" if second in PAPER else "counting core")


def module_files() -> dict[str, Path]:
    found = {}
    for package in ("profiler", "models"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = module_files()


def package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imported_names(module: str, path: Path) -> set[str]:
    """Our modules that ``module``'s import statements name, wherever they stand, and those
    its lazy exports (an ``_EXPORTS`` table of name -> module) load on first use."""
    package = package_of(module, path)
    names = set(lazy_export_modules(module, path))
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names
                         if f"{base}.{alias.name}" in MODULES)
    return {name for name in names if name.split(".")[0] in ("profiler", "models")}


def test_every_module_has_a_layer_and_the_zoo_is_found():
    layers = {name: layer_of(name) for name in MODULES}
    assert layers["profiler.analyzer"] == 0 and layers["models.bit"] == 1
    assert layers["profiler.paper_storage"] == 2 and layers["models.trainer.pretrain.loop"] == 3
    assert layers["profiler.commands.profile_model"] == 4
    for layer in range(len(LAYERS)):
        assert layer in layers.values(), LAYERS[layer]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_earlier_layers(module):
    own = layer_of(module)
    for name in imported_names(module, MODULES[module]):
        assert layer_of(name) <= own, (
            f"{module} ({LAYERS[own]}) imports {name} ({LAYERS[layer_of(name)]})")
        if own == LAYERS.index("zoo"):
            assert not name.startswith("profiler"), f"zoo module {module} imports {name}"


def test_the_import_scan_sees_function_level_and_relative_imports(tmp_path):
    path = tmp_path / "fake.py"
    path.write_text("def f():\n    from ..table import resolve_models\n"
                    "    from . import arguments\n    import models.trainer.cli\n")
    assert imported_names("profiler.commands.fake", path) == {
        "profiler.table", "profiler.commands", "profiler.commands.arguments",
        "models.trainer.cli"}


SNIPPET = """
import importlib, json, sys
for name in {modules!r}:
    importlib.import_module(name)
print(json.dumps(sorted(n for n in sys.modules if n.split(".")[0] in ("profiler", "models"))))
"""


@pytest.mark.parametrize("layer", LAYERS)
def test_a_fresh_interpreter_importing_a_layer_loads_no_later_one(layer):
    index = LAYERS.index(layer)
    modules = sorted(name for name in MODULES if layer_of(name) == index
                     and not name.endswith("__main__"))
    result = subprocess.run([sys.executable, "-c", SNIPPET.format(modules=modules)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    later = [name for name in loaded if layer_of(name) > index]
    assert not later, f"importing the {layer} loaded {later}"
    if layer == "zoo":
        assert not [name for name in loaded if name.startswith("profiler")]


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_cycle_finder_finds_a_hand_made_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles():
    # A submodule importing its own package (``from . import x``) is no cycle.
    graph = {module: {name for name in imported_names(module, path)
                      if name in MODULES and name != module
                      and not module.startswith(name + ".")}
             for module, path in MODULES.items()}
    assert not import_cycles(graph)


# --------------------------------------------------------------- inside the trainer
TRAINER = "models.trainer"
TRAINER_LAYERS = ("base", "data", "pretrain", "distill", "superb", "study", "entry points")
# The trainer's shared base: modules at the top of models/trainer/ that every job uses.
TRAINER_BASE = {"autocast", "confidence", "errors", "fileio", "options"}
# The package itself (its lazy exports), ``python -m models.trainer`` and the data CLI.
TRAINER_ENTRY_POINTS = {"", "cli", "__main__"}


def trainer_layer_of(module: str) -> int:
    assert module == TRAINER or module.startswith(TRAINER + "."), module
    first = module[len(TRAINER) + 1:].split(".")[0]
    if first in TRAINER_ENTRY_POINTS:
        return TRAINER_LAYERS.index("entry points")
    if first in TRAINER_BASE:
        return TRAINER_LAYERS.index("base")
    assert first in TRAINER_LAYERS, f"{module}: not in a subpackage of TRAINER_LAYERS"
    return TRAINER_LAYERS.index(first)


TRAINER_MODULES = sorted(name for name in MODULES
                         if name == TRAINER or name.startswith(TRAINER + "."))


def test_every_trainer_module_has_a_place_and_every_place_is_used():
    places = {name: trainer_layer_of(name) for name in TRAINER_MODULES}
    assert places[f"{TRAINER}.errors"] == 0 and places[f"{TRAINER}.data.synth"] == 1
    assert places[f"{TRAINER}.pretrain.loop"] == 2 and places[f"{TRAINER}.distill.chain"] == 3
    assert places[f"{TRAINER}.superb.tasks.asr"] == 4 and places[f"{TRAINER}.study.plan"] == 5
    assert places[f"{TRAINER}.cli"] == 6
    assert set(places.values()) == set(range(len(TRAINER_LAYERS)))


@pytest.mark.parametrize("module", TRAINER_MODULES)
def test_trainer_modules_import_only_earlier_subpackages(module):
    own = trainer_layer_of(module)
    for name in imported_names(module, MODULES[module]):
        if name == TRAINER or name.startswith(TRAINER + "."):
            assert trainer_layer_of(name) <= own, (
                f"{module} ({TRAINER_LAYERS[own]}) imports {name} "
                f"({TRAINER_LAYERS[trainer_layer_of(name)]})")


def test_the_trainer_lazy_imports_name_existing_modules_of_earlier_places():
    # Importing these two must stay cheap, so this runs in a fresh interpreter that
    # reports the targets and whether torch got loaded.
    code = ("import json, sys, models.trainer as t, models.trainer.superb.tasks as tasks\n"
            "print(json.dumps([sorted(set(t._EXPORTS.values())), list(tasks.TASKS),"
            " 'torch' in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    exports, tasks, torch_loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert not torch_loaded
    for module in exports:
        name = f"{TRAINER}.{module}"
        assert name in MODULES, name
        assert trainer_layer_of(name) < trainer_layer_of(TRAINER), name
    assert tasks
    for task in tasks:
        name = f"{TRAINER}.superb.tasks.{task}"
        assert name in MODULES, name
        assert trainer_layer_of(name) == trainer_layer_of(f"{TRAINER}.superb.tasks")


def test_a_backward_import_inside_the_trainer_is_seen(tmp_path):
    # Before the split, the pre-training settings imported the SUPERB task table.
    path = tmp_path / "settings.py"
    path.write_text("def f():\n    from ..superb.task_table import SUPERB_TASKS\n")
    own = trainer_layer_of(f"{TRAINER}.pretrain.settings")
    seen = [trainer_layer_of(name) for name in imported_names(f"{TRAINER}.pretrain.settings", path)]
    assert seen and max(seen) > own


# Every dynamic import in profiler/ and models/: (file, the function it is in) -> why it
# cannot be a static import statement.
LAZY_EXPORT = "lazy export for start-up time"
DYNAMIC_IMPORTS = {
    # `import profiler` 0.04 s instead of 2.1 s (torch): `profile-encoder --help` and
    # argument errors answer at once
    ("profiler/__init__.py", "__getattr__"): LAZY_EXPORT,
    # `import models` 0.04 s instead of 2.0 s (torch): the trainer's data tools and the
    # training commands' --help import the package
    ("models/__init__.py", "__getattr__"): LAZY_EXPORT,
    ("profiler/commands/loading.py", "_import_file"): "user-code loading: the user's model file",
    ("profiler/commands/loading.py", "_import_module"):
        "user-code loading: the user's model module",
    # `import models.trainer` stays free of torch: the data CLI and --help import it
    ("models/trainer/__init__.py", "__getattr__"): LAZY_EXPORT,
    # the data CLI builds its real-corpus commands from real_corpora.REAL_CORPORA; the
    # loaders import numpy (0.09 s) that `data --help` does not need
    ("models/trainer/superb/real_corpora/__init__.py", "__getattr__"): LAZY_EXPORT,
    ("models/trainer/superb/tasks/__init__.py", "get_task"):
        "lazy task lookup for start-up time: every task module imports torch (1.6 s), and the "
        "data CLI builds its parser from TASKS in this package",
}
_DYNAMIC_CALLS = {"import_module", "__import__", "spec_from_file_location", "module_from_spec",
                  "spec_from_loader", "exec_module", "load_module", "run_path", "run_module"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def dynamic_imports(path: Path) -> set[str]:
    """The functions (``<module>`` at top level) of ``path`` that import dynamically:
    an import function called by name, or anything called from ``importlib.util``."""
    found = set()

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child.name)
                continue
            if isinstance(child, ast.Call):
                called = _dotted(child.func)
                if called.rpartition(".")[2] in _DYNAMIC_CALLS or called.startswith(
                        "importlib.util."):
                    found.add(function)
            visit(child, function)

    visit(ast.parse(path.read_text(encoding="utf-8")), "<module>")
    return found


def lazy_export_modules(module: str, path: Path) -> list[str]:
    """The modules a top-level ``_EXPORTS = {name: module}`` table loads, relative to the
    package (``".analyzer"`` or ``"espeak"``)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and [_dotted(t) for t in node.targets] == ["_EXPORTS"]:
            package = package_of(module, path)
            return sorted({f"{package}.{value.value.lstrip('.')}" for value in node.value.values})
    return []


def test_the_dynamic_import_scan_sees_every_form(tmp_path):
    path = tmp_path / "fake.py"
    path.write_text("import importlib, importlib.util\nfrom importlib import import_module\n"
                    "def a():\n    importlib.import_module('x')\n"
                    "def b():\n    import_module('x')\n"
                    "def c():\n    __import__('x')\n"
                    "def d():\n    importlib.util.find_spec('x')\n"
                    "def e():\n    spec.loader.exec_module(m)\n"
                    "def f():\n    def inner():\n        importlib.import_module('x')\n"
                    "importlib.import_module('x')\n"
                    "def quiet():\n    importlib.resources.files('x')\n")
    assert dynamic_imports(path) == {"a", "b", "c", "d", "e", "inner", "<module>"}


def test_every_dynamic_import_is_listed_with_its_reason():
    found = {(path.relative_to(ROOT).as_posix(), function)
             for path in MODULES.values() for function in dynamic_imports(path)}
    assert not found - set(DYNAMIC_IMPORTS), (
        f"dynamic imports not on DYNAMIC_IMPORTS (use an import statement, or list them "
        f"with the reason): {sorted(found - set(DYNAMIC_IMPORTS))}")
    assert not set(DYNAMIC_IMPORTS) - found, (
        f"listed but gone: {sorted(set(DYNAMIC_IMPORTS) - found)}")


def test_lazy_exports_name_modules_that_exist():
    lazy = {file for (file, _), why in DYNAMIC_IMPORTS.items() if why == LAZY_EXPORT}
    for module, path in MODULES.items():
        targets = lazy_export_modules(module, path)
        if path.relative_to(ROOT).as_posix() in lazy:
            assert targets, f"{module} is listed as a lazy export but has no _EXPORTS"
        missing = [name for name in targets if name not in MODULES]
        assert not missing, f"{module}'s _EXPORTS names modules that do not exist: {missing}"
