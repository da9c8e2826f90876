"""The teacher gate: each encoder's FP teacher must beat its random-init twin on
:data:`GATE_TASKS` tasks, or the study's degradations are measured from teachers that
learned nothing the tasks use. Its record (``summary.json``'s ``teacher_gate``) and its
words, for the teacher section and the verdict.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from .claims import NOT_EVALUATED
from .collect import Study

# The teacher gate: each encoder's FP teacher beats its random-init twin on this many tasks.
GATE_TASKS = 3


def teacher_gate(study: Study, anchors: Dict[tuple, Dict[str, Any]]) -> Dict[str, Any]:
    """Per model, the tasks its teacher beats random-init on (seed-inclusive interval above
    0), and whether every model reaches :data:`GATE_TASKS`; ``final`` once every model has
    the study's seeds on every task (fewer seeds: a provisional reading)."""
    planned = int(study.record.get("seeds") or 0)
    models = {}
    for model in study.models:
        rows = [anchors[(model, task)] for task in study.tasks]
        beaten = [task for task, row in zip(study.tasks, rows) if row.get("informative")]
        by_t = [task for task, row in zip(study.tasks, rows)
                if row.get("interval_seeds_t") and row["interval_seeds_t"][0] > 0]
        seeds = min((len(row["seeds"]) for row in rows if row.get("value") is not None),
                    default=0)
        # A task not evaluated yet could still be beaten: the reading is not final. One its
        # gate closed (or without an anchor) will not be evaluated.
        pending = [task for task, row in zip(study.tasks, rows)
                   if row.get("status") == NOT_EVALUATED]
        models[model] = {"tasks_beating_random": beaten, "seeds": seeds,
                         "passes": len(beaten) >= GATE_TASKS,
                         "tasks_beating_random_by_seed_t": by_t}
        if pending:
            models[model]["tasks_not_evaluated"] = pending
    return {"needed_tasks": GATE_TASKS, "planned_seeds": planned, "models": models,
            "study_tasks": list(study.tasks),
            "passes": bool(models) and all(m["passes"] for m in models.values()),
            "final": bool(models) and all(m["seeds"] >= planned and not
                                          m.get("tasks_not_evaluated")
                                          for m in models.values())}


def _not_final_reason(gate: Dict[str, Any]) -> str:
    """Why the gate's reading is provisional: seeds still to come, tasks not evaluated."""
    pending = sorted({task for row in gate["models"].values()
                      for task in row.get("tasks_not_evaluated", [])})
    short = any(row.get("seeds", 0) < gate["planned_seeds"] for row in gate["models"].values())
    reasons = ([f"not every task has the study's {gate['planned_seeds']} seeds yet"]
               if short else []) + ([f"{', '.join(pending)} not evaluated yet"]
                                    if pending else [])
    return "; ".join(reasons)


def _counted(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def gate_shortfall(gate: Optional[Dict[str, Any]]) -> str:
    """Why the gate does not pass, as a sentence ('' when it passes or there is none)."""
    if not gate or gate["passes"] or not gate["models"]:
        return ""
    tasks = gate.get("study_tasks") or []
    if len(tasks) < gate["needed_tasks"]:
        return (f"The teacher gate cannot pass in this study: it evaluates "
                f"{_counted(len(tasks), 'task')} ({', '.join(tasks)}), fewer than the "
                f"{gate['needed_tasks']} the gate needs.")
    short = "; ".join(f"{model} on {len(row['tasks_beating_random'])}"
                      for model, row in gate["models"].items() if not row["passes"])
    if not gate["final"]:
        return (f"The teacher gate has not passed yet ({short} of the {gate['needed_tasks']} "
                f"tasks it needs; {_not_final_reason(gate)}).")
    return (f"The teacher gate does not pass (the teacher beats random-init: {short} of the "
            f"{gate['needed_tasks']} tasks it needs), so the teachers fall short of the "
            f"study's own bar.")


def gate_paragraph(gate: Dict[str, Any]) -> str:
    parts = [f"{model} beats it on {len(row['tasks_beating_random'])} "
             f"({', '.join(row['tasks_beating_random']) or 'none'}; "
             f"{_counted(row['seeds'], 'seed')})"
             for model, row in gate["models"].items()]
    outcome = "passes" if gate["passes"] else "does not pass"
    tasks = gate.get("study_tasks") or []
    when = (f" It cannot pass here: the study evaluates {_counted(len(tasks), 'task')}."
            if len(tasks) < gate["needed_tasks"] else "" if gate["final"] else
            f" Provisional: {_not_final_reason(gate)}.")
    by_t = "; ".join(f"{model} {len(row['tasks_beating_random_by_seed_t'])} "
                     f"({', '.join(row['tasks_beating_random_by_seed_t']) or 'none'})"
                     for model, row in gate["models"].items())
    check = (f" By the t interval over seeds (a check: with a handful of seeds the "
             f"bootstrap's percentile interval is narrower than Student's t): {by_t}."
             if by_t else "")
    return (f"**Teacher gate** (each FP teacher beats its random-init upstream on at least "
            f"{gate['needed_tasks']} tasks, seed-inclusive interval above 0): "
            f"{'; '.join(parts) or 'no model evaluated'}. The gate {outcome}.{when}{check}")
