"""The layers of the README ("Layers"): each imports only the ones before it.

counting core -> zoo -> paper convention & reports -> training -> CLI. The zoo (``models/``
outside ``models/trainer/``) imports nothing from ``profiler``. Checked twice: statically,
every import statement of every module (function-level imports too); and at run time, each
layer's modules imported in a fresh interpreter, which must not load a later layer.

Inside the training layer, the trainer's subpackages are in order too (base -> data ->
pretrain -> distill -> superb -> study -> entry points), checked statically; its two
dynamic imports are listed in :data:`TRAINER_LAZY_IMPORTS` and their targets checked.
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
PAPER = {"conventions", "reference", "table", "formats", "reporting", "golden",
         "paper_storage", "figures", "measure", "calibration"}


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


def imported_names(module: str, path: Path) -> set[str]:
    """Our modules that ``module``'s import statements name, wherever they stand."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
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
TRAINER_BASE = {"errors", "fileio", "options"}
# The package itself (its lazy exports), ``python -m models.trainer`` and the data CLI.
TRAINER_ENTRY_POINTS = {"", "cli", "__main__"}
# The only dynamic imports in the trainer, each kept because it saves start-up time:
# importing the module must not import torch.
TRAINER_LAZY_IMPORTS = {
    TRAINER: "the lazy exports: import models.trainer stays cheap",
    f"{TRAINER}.superb.tasks": "get_task: the data CLI reads TASKS without importing torch",
}


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


def dynamic_imports(path: Path) -> int:
    calls = 0
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else getattr(
                function, "id", "")
            calls += name in ("import_module", "__import__")
    return calls


def test_the_trainer_has_only_the_listed_dynamic_imports():
    found = {module for module in TRAINER_MODULES if dynamic_imports(MODULES[module])}
    assert found == set(TRAINER_LAZY_IMPORTS)


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
