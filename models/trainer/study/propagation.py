"""Error propagation: how far a binarized student's hidden states drift from its teacher's.

The paper explains BQ's losses by errors that "propagate between quantized modules of
different types" without testing it. Here a full-precision teacher and each of its
students run on the same utterances (the teacher's validation split, one at a time, no
padding), and every hidden state (the encoder input, then each layer's output) is
compared:

* relative error ``||h_student - h_teacher||_F / ||h_teacher||_F`` over all frames of all
  utterances;
* cosine similarity of the two hidden vectors of each frame, averaged over frames.

Students built from the same teacher but binarizing one module type only (``bq-attention``,
``bq-convolution``, ``bq-feed_forward``) show which type the error comes from, and how it
grows with depth.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

import torch

from ..fileio import write_json


class LayerErrors:
    """Running sums for :func:`layer_errors` over many utterances."""

    def __init__(self) -> None:
        self.squared_error: List[float] = []
        self.squared_norm: List[float] = []
        self.cosine_sum: List[float] = []
        self.frames = 0

    def add(self, teacher: Sequence[torch.Tensor], student: Sequence[torch.Tensor]) -> None:
        """Hidden states (..., D) of one batch, teacher's and student's, layer by layer."""
        if len(teacher) != len(student):
            raise ValueError(f"the teacher has {len(teacher)} hidden states, the student "
                             f"{len(student)}")
        if not self.squared_error:
            count = len(teacher)
            self.squared_error, self.squared_norm, self.cosine_sum = ([0.0] * count,
                                                                      [0.0] * count,
                                                                      [0.0] * count)
        for index, (t, s) in enumerate(zip(teacher, student)):
            t, s = t.double().reshape(-1, t.shape[-1]), s.double().reshape(-1, s.shape[-1])
            self.squared_error[index] += float(((s - t) ** 2).sum())
            self.squared_norm[index] += float((t ** 2).sum())
            self.cosine_sum[index] += float(torch.nn.functional.cosine_similarity(
                s, t, dim=-1, eps=1e-12).sum())
        self.frames += teacher[0].reshape(-1, teacher[0].shape[-1]).shape[0]

    def result(self) -> Dict[str, List[float]]:
        return {"relative_error": [(e / max(n, 1e-300)) ** 0.5 for e, n in
                                   zip(self.squared_error, self.squared_norm)],
                "cosine": [c / max(self.frames, 1) for c in self.cosine_sum]}


def layer_errors(teacher: Sequence[torch.Tensor],
                 student: Sequence[torch.Tensor]) -> Dict[str, List[float]]:
    """Per hidden state: relative error and mean per-frame cosine similarity."""
    errors = LayerErrors()
    errors.add(teacher, student)
    return errors.result()


@torch.no_grad()
def measure(teacher_run: str, student_runs: Dict[str, str], utterances: int,
            device: str | None = None, *, deployed: bool = False) -> Dict:
    """Run the teacher and each student on the teacher's first ``utterances`` validation
    utterances; the per-layer errors of each student. ``deployed``: each student runs
    as deployed on packed 1-bit kernels (``superb --deployed``'s copy; CPU only), the
    model a ``study --deployed`` scores, instead of the training-time simulation."""
    from ..data.audio import read_audio
    from ..data.manifest import manifest_path, read_manifest
    from ..pretrain import checkpoint as ckpt
    from ..pretrain.distributed import pick_device
    from ..superb.runner import deployed_upstream

    where = pick_device(0, device)
    teacher, _, _ = ckpt.load_run_model(teacher_run)
    metadata = ckpt.read_metadata(teacher_run)
    manifest = read_manifest(manifest_path(metadata["pretrain_folder"], "valid"))
    waveforms = [torch.from_numpy(read_audio(manifest.audio_path(i))).float()[None]
                 for i in range(min(utterances, len(manifest)))]
    teacher.to(where)
    reference = [teacher(w.to(where)).hidden_states for w in waveforms]
    students = {}
    for name, run in student_runs.items():
        student, config, step = ckpt.load_run_model(run)
        student.to(where)
        if deployed:
            student = deployed_upstream(student)
        errors = LayerErrors()
        for waveform, states in zip(waveforms, reference):
            errors.add(states, student(waveform.to(where)).hidden_states)
        students[name] = {**errors.result(), "model": config["name"], "step": step,
                          "quantize_modules": list(config["config"]["quantize_modules"]),
                          **({"deployed": "packed W1A1 kernels (models.deploy)"}
                             if deployed else {})}
    return {"teacher": str(Path(teacher_run).resolve()), "utterances": len(waveforms),
            "hidden_states": "index 0: encoder input; index k: output of layer k",
            "students": students}


def measure_job(job) -> None:
    options = job.options
    result = measure(options["teacher"], options["students"], options["utterances"],
                     options.get("device"), deployed=options.get("deployed", False))
    write_json(job.path, result, sort_keys=False)
