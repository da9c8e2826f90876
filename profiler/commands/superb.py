"""``profile-encoder superb``: SUPERB-style evaluation (the ten tasks) of a frozen upstream.

The options are the fields of ``models.trainer.superb.settings.SuperbSettings``."""
from __future__ import annotations

from models.trainer.confidence import LEVEL_TEXT
from models.trainer.superb.settings import SuperbSettings

from ..training_commands import TRAINING_COMMANDS
from .arguments import add_backend_option
from .settings_arguments import add_settings_arguments, settings_from_arguments


def add_parser(sub) -> None:
    p = sub.add_parser(
        "superb", help=TRAINING_COMMANDS["superb"],
        description="Freeze the upstream, learn a softmax-weighted sum of all its hidden "
                    "states and a small head for one SUPERB task (--task; query by example "
                    "trains nothing: it picks the best hidden layer for DTW on valid). "
                    f"Writes OUT/results.json (task, metric, value, its {LEVEL_TEXT} "
                    f"bootstrap interval over test items, chance, settings) and OUT/head.pt.",
    )
    add_settings_arguments(p, SuperbSettings)
    add_backend_option(p, "evaluation")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..adapters import EvalRequest, get_backend

    request = EvalRequest(**settings_from_arguments(args, SuperbSettings))
    result = get_backend(args.backend).evaluate(request)
    if request.progress is not False:
        low, high = result.interval
        print(f"{result.task} {result.metric} {result.value:.4f} ({LEVEL_TEXT} interval "
              f"[{low:.4f}, {high:.4f}], chance {result.chance:.4f}) -> {result.results_path}")
    return 0
