"""``profile-encoder superb``: SUPERB-style evaluation (all ten tasks) of a frozen upstream."""
from __future__ import annotations

from models.trainer.tasks import TASKS as REGISTERED_TASKS

TASKS = ("ks", "sid", "pr") + REGISTERED_TASKS


def add_parser(sub) -> None:
    from ..cli import non_negative_int, positive_float, positive_int

    p = sub.add_parser(
        "superb", help="SUPERB-style evaluation of a trained (or random) upstream",
        description="Freeze the upstream, learn a softmax-weighted sum of all its hidden "
                    "states and a small head: keyword spotting (ks), speaker ID (sid), intent "
                    "classification (ic) and the prosody-class proxy of emotion recognition "
                    "(er) report accuracy; phoneme recognition (pr) the phoneme error rate, "
                    "ASR (asr) the word error rate, diarization (sd) the DER, verification "
                    "(asv) the EER, slot filling (sf) the slot-type F1, query by example "
                    "(qbe, no training) the MTWV. Writes OUT/results.json (task, metric, "
                    "value, 95 %% interval, chance, settings).",
    )
    p.add_argument("--task", required=True, choices=TASKS, help=", ".join(TASKS))
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--upstream", metavar="RUN",
                        help="a run folder of 'profile-encoder train' (or one of its checkpoints)")
    source.add_argument("--random-init", metavar="MODEL",
                        help="a zoo model with random weights (the baseline of the same shape)")
    p.add_argument("--override", action="append", metavar="KEY=VALUE",
                   help="model config override for --random-init (repeatable)")
    p.add_argument("--data", help="corpus folder (default: the one the upstream was trained on; "
                                  "else the --tiny corpus, synthesized into OUT/data)")
    p.add_argument("--out", required=True, help="output folder for results.json and head.pt")
    p.add_argument("--steps", type=positive_int, help="head training steps (default 1500)")
    p.add_argument("--batch-size", type=positive_int, help="head batch size (ks/sid 32, pr 16)")
    p.add_argument("--lr", type=positive_float, help="head learning rate (ks/sid 1e-3, pr 1e-2)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: a GPU if there is one)")
    p.add_argument("--backend", default="bundled", help="evaluation backend (default: bundled)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    p.set_defaults(run=run)


def run(args) -> int:
    from pathlib import Path

    from ..adapters import EvalRequest, get_backend
    from .train import overrides_from

    if args.override and not args.random_init:
        from ..errors import UsageError

        raise UsageError("--override applies to --random-init only (a run folder fixes its model)")
    request = EvalRequest(
        task=args.task, out=Path(args.out),
        upstream=Path(args.upstream) if args.upstream else None, random_init=args.random_init,
        overrides=overrides_from(args.override), data=Path(args.data) if args.data else None,
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        device=args.device, progress=not args.quiet)
    result = get_backend(args.backend).evaluate(request)
    if not args.quiet:
        print(f"{result.task} {result.metric} {result.value:.4f} (chance {result.chance:.4f}) "
              f"-> {result.results_path}")
    return 0
