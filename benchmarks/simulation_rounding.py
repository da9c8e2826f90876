"""How far float rounding moves a BQ model's hidden states: the training-time simulation
run on 1 and on 2 threads, the same for its deployed copy (``models.deploy``, whose W1A1
products are summed exactly in integers), and the two against each other.

    PYTHONPATH=. python benchmarks/simulation_rounding.py [--models bq-conformer-s,...]
        [--seconds 6]

The simulation multiplies +-scale operands and sums them in float, so a product whose
integer sum is exactly 0 comes out as a tiny positive or negative number, by the summation
order the matrix kernel picks (which can depend on the thread count); where the next
binarizer's threshold sits at that value, its sign flips, and flips grow through the
layers. Each model is built with seed 0, its binarizers initialized by one training-mode
forward (seed 0), and run on one random utterance (seed 0). Prints, per hidden state
(0: the encoder input), the relative error ||a - b|| / ||a||. Deterministic: no timing.
"""
from __future__ import annotations

import argparse

import torch

import models
from profiler.measure import _utterance, deploy_for_timing
from profiler.option_values import split_list


def hidden_states(model, wave, threads: int):
    torch.set_num_threads(threads)
    with torch.inference_mode():
        return model(wave).hidden_states


def relative_errors(first, second) -> list[float]:
    return [((a - b).norm() / a.norm()).item() for a, b in zip(first, second)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="bq-conformer-s,bq-sparseformer-dn-s")
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    wave = _utterance(args.seconds)
    for name in split_list(args.models):
        simulated = models.build(name, seed=0).eval()
        deployed = deploy_for_timing(simulated, args.seconds)
        one, two = hidden_states(simulated, wave, 1), hidden_states(simulated, wave, 2)
        packed, packed_two = hidden_states(deployed, wave, 1), hidden_states(deployed, wave, 2)
        for label, errors in (("simulation, 1 against 2 threads", relative_errors(one, two)),
                              ("deployed, 1 against 2 threads",
                               relative_errors(packed, packed_two)),
                              ("simulation against deployed", relative_errors(one, packed))):
            print(f"{name}, {label}: last layer {errors[-1]:.2g}; per state "
                  + " ".join(f"{e:.1e}" for e in errors))


if __name__ == "__main__":
    main()
