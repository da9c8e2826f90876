"""Does pre-training learn masked prediction? Validation masked-unit accuracy of pre-training
runs against the unit prior, from their run folders.

    python benchmarks/masked_prediction_report.py RUN [RUN ...] [--output FILE]

For each run folder (``profile-encoder train``): the validation masked-frame accuracy and
loss at every validation step (``log.jsonl``), beside what always predicting the training
split's most frequent unit scores on the validation split (accuracy) and the cross-entropy
of the training split's unit frequencies on the validation units (loss). Runs that log
``acc_over_prior`` and ``acc_over_prior_se`` (the trainer's validation, on the same masked
frames, with an utterance-level bootstrap: span-masked frames are correlated) are judged
by those; older logs fall back to sqrt(p (1 - p) / n) over about half the validation
frames, which understates the error.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def unit_prior(run: Path) -> tuple[float, float, int]:
    """(accuracy, cross-entropy, validation frames) of the training unit prior."""
    from models.trainer.data.manifest import UNIT_LABELS, labels_path
    from models.trainer.pretrain.run_setup import TARGETS

    train, valid = Counter(), Counter()
    for name, counter in (("train", train), ("valid", valid)):
        for line in labels_path(run / TARGETS, name, UNIT_LABELS).read_text().splitlines():
            counter.update(line.split())
    total_train, total_valid = sum(train.values()), sum(valid.values())
    top = train.most_common(1)[0][0]
    floor = 0.5 / total_train  # a unit never seen in training
    loss = -sum(count * math.log(train.get(unit, 0) / total_train or floor)
                for unit, count in valid.items()) / total_valid
    return valid[top] / total_valid, loss, total_valid


def describe(run: Path) -> list[str]:
    from models.trainer.fileio import read_json, read_log
    from models.trainer.pretrain.checkpoint import LOG, METADATA

    metadata = read_json(run / METADATA)
    settings = metadata["settings"]
    overrides = {k: v for k, v in metadata.get("overrides", {}).items() if k != "num_classes"}
    accuracy, loss, frames = unit_prior(run)
    rows = read_log(run / LOG)
    valid = [r for r in rows if r["split"] == "valid"]
    masked = [r.get("masked_frames") for r in rows if r["split"] == "train"]
    lines = [f"### {metadata['model']} (`{run}`)",
             "",
             f"{settings['steps']} steps, batch {settings['batch_size']} x "
             f"{settings['crop_seconds']:g} s, lr {settings['lr']:g}, unmasked weight "
             f"{settings['unmasked_weight']:g}, {settings['clusters']} units, overrides "
             f"{overrides or 'none'}, seed {settings['seed']}; "
             f"{metadata.get('wall_seconds', 0) / 60:.1f} min. Unit prior on the "
             f"{frames} validation frames: accuracy {accuracy:.3f}, loss {loss:.3f}.",
             "",
             "| step | masked acc | masked loss | unmasked acc | acc - prior |",
             "| ---: | ---: | ---: | ---: | ---: |"]
    for r in valid:
        lines.append(f"| {r['step']} | {r['acc_masked']:.3f} | {r['loss']:.3f} | "
                     f"{r['acc_unmasked']:.3f} | {r['acc_masked'] - accuracy:+.3f} |")
    final = valid[-1]["acc_masked"] if valid else float("nan")
    share = len([m for m in masked if m]) and sum(m for m in masked if m) / len(masked)
    last = valid[-1] if valid else {}
    if "acc_over_prior_se" in last:
        margin, standard_error = last["acc_over_prior"], last["acc_over_prior_se"]
        accuracy = last["acc_masked_prior"]
        how = (f"utterance-bootstrap standard error of the margin over "
               f"{last['bootstrap_utterances']} validation utterances, prior on the same "
               f"masked frames")
    else:
        margin = final - accuracy
        standard_error = math.sqrt(max(final * (1 - final), 1e-12) / max(frames / 2, 1))
        how = ("binomial over about half of the validation frames, taken as masked: too "
               "small, masked frames are correlated")
    above = margin > 2 * standard_error
    verdict = ("clearly above the prior (more than two standard errors)" if above
               else "not clearly above the prior (within two standard errors, or below)")
    lines += ["", f"Last validation: masked accuracy {final:.3f} against the prior's "
              f"{accuracy:.3f}, margin {margin:+.3f} (standard error {standard_error:.3f}, "
              f"{how}; a training step masks about "
              f"{share:.0f} frames): **{verdict}**; the masked loss "
              f"{valid[-1]['loss'] if valid else float('nan'):.3f} against the prior's "
              f"{loss:.3f}.", ""]
    return lines


def run(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of profile-encoder train")
    parser.add_argument("--output", type=Path,
                        default=ROOT / "reports" / "training" / "masked_prediction.md")
    args = parser.parse_args(argv)
    lines = ["# Masked prediction at small scale: validation accuracy against the unit prior",
             "",
             "Written by `python benchmarks/masked_prediction_report.py` from the run folders "
             "below (synthetic espeak-ng speech, 2 CPU cores).",
             ""]
    for folder in args.runs:
        lines += describe(folder)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(run())
