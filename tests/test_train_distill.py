"""BiT's multi-distillation pieces: losses on hand-worked cases, the chain of precisions,
the student's start from the teacher's weights and BiT's parameter groups."""
import math

import pytest
import torch

import models
from models.bit import ElasticBinarizer
from models.quantization import Quantization
from models.trainer.errors import DataError
from models.trainer.fileio import read_json, read_log
from models.trainer.pretrain.distillation import (
    DistillationWeights,
    bit_parameter_groups,
    distillation_loss,
    hidden_state_loss,
    parse_chain,
    soft_cross_entropy,
    student_from_teacher,
)

SMALL = dict(layers=2, dim=64, heads=4, ffn_dim=128, num_classes=10, final_dim=16)


def test_hidden_state_loss_sums_layer_mses_over_real_frames():
    # Layer 0: error 1 everywhere -> MSE 1. Layer 1: error 2 on frame 0, 10 on the padded
    # frame 1 -> only frame 0 counts -> MSE 4. Sum 5.
    teacher = [torch.zeros(1, 2, 3), torch.zeros(1, 2, 3)]
    student = [torch.ones(1, 2, 3), torch.tensor([[[2.0] * 3, [10.0] * 3]])]
    padding = torch.tensor([[False, True]])
    assert hidden_state_loss(student, teacher, padding).item() == pytest.approx(5.0)
    # Without padding the second layer is (4 + 100) / 2 = 52.
    assert hidden_state_loss(student, teacher).item() == pytest.approx(53.0)


def test_soft_cross_entropy_against_a_uniform_teacher():
    teacher = torch.zeros(1, 2, 2)                                   # uniform targets
    student = torch.log(torch.tensor([[[1.0, 3.0], [1.0, 1.0]]]))     # p = (1/4, 3/4), (1/2, 1/2)
    select = torch.tensor([[True, False]])
    total, frames = soft_cross_entropy(student, teacher, select)
    expected = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    assert frames.item() == 1
    assert total.item() == pytest.approx(expected, rel=1e-6)
    # Temperature 2 halves both sets of logits: uniform teacher still, student p ~ (1, sqrt 3).
    total_t2, _ = soft_cross_entropy(student, teacher, select, temperature=2.0)
    p = 1.0 / (1.0 + math.sqrt(3.0))
    assert total_t2.item() == pytest.approx(-(0.5 * math.log(p) + 0.5 * math.log(1 - p)), rel=1e-6)


def test_distillation_loss_sums_its_weighted_terms_over_real_frames():
    teacher_hidden = [torch.zeros(1, 3, 3)]
    student_hidden = [torch.ones(1, 3, 3, requires_grad=True)]
    teacher_logits = torch.zeros(1, 3, 2)
    student_logits = torch.log(
        torch.tensor([[[1.0, 3.0], [1.0, 1.0], [9.0, 1.0]]])).requires_grad_()
    keep = torch.tensor([[True, True, False]])            # frame 2 is padding
    weights = DistillationWeights(hidden=2.0, prediction=0.5)
    parts = distillation_loss(student_hidden, teacher_hidden, student_logits, teacher_logits,
                              keep, weights)
    # Hidden: squared error 1 per frame, two real frames. Prediction against uniform
    # targets: -(ln(1/4) + ln(3/4)) / 2 on frame 0, ln 2 on frame 1.
    prediction = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75)) + math.log(2.0)
    assert parts.frames.item() == 2
    assert parts.hidden.item() == pytest.approx(2.0)
    assert parts.prediction.item() == pytest.approx(prediction, rel=1e-6)
    # BiT averages the cross-entropy over the 2 units: weight 0.5 on prediction / 2.
    assert parts.loss.item() == pytest.approx(2.0 * 2.0 + 0.5 * prediction / 2, rel=1e-6)
    parts.loss.backward()
    assert student_hidden[0].grad is not None and student_logits.grad is not None
    assert torch.all(student_logits.grad[0, 2] == 0)       # padding takes no part


def test_logit_term_averages_over_units_as_bit_does():
    # 50 units, uniform teacher, uniform student: the cross-entropy of one frame is ln 50
    # nats; BiT's soft_cross_entropy takes the mean over the 50 classes: ln(50) / 50 =
    # 0.0782404... Hidden state: error 0.5 on every feature of the one frame -> 0.25.
    units = 50
    teacher_logits = torch.zeros(1, 1, units)
    student_logits = torch.zeros(1, 1, units)
    student_hidden = [torch.full((1, 1, 4), 0.5)]
    teacher_hidden = [torch.zeros(1, 1, 4)]
    parts = distillation_loss(student_hidden, teacher_hidden, student_logits, teacher_logits,
                              torch.tensor([[True]]), DistillationWeights())
    assert parts.prediction.item() == pytest.approx(3.9120230054, rel=1e-6)     # ln 50
    assert parts.loss.item() == pytest.approx(0.25 + 0.0782404601, rel=1e-6)


def test_precisions_and_chains():
    assert parse_chain("w32a32, w1a4") == [Quantization(32, 32), Quantization(1, 4)]
    assert parse_chain("W32A32,W1A4")[0].full_precision
    assert [p.label for p in parse_chain("W32A32,W1A4,W1A2,W1A1")] == [
        "W32A32", "W1A4", "W1A2", "W1A1"]
    for bad in ("W32A32", "W1A1,W32A32", "W1A2,W2A1", "W4A4,W4A4", "W0A1,W0A0", "X1", "W1A99,W1A1"):
        with pytest.raises(DataError):
            parse_chain(bad)
    with pytest.raises(DataError, match=r"precision 'X1': expected W<bits>A<bits>"):
        parse_chain("W32A32,X1")


def test_a_student_holds_the_teachers_float_weights_before_its_first_step():
    teacher = models.build("sparseformer-dn-s", seed=1, **SMALL)
    student = models.build("bq-sparseformer-dn-s", seed=2, **SMALL)
    transfer = student_from_teacher(student, teacher)
    student_state, teacher_state = student.state_dict(), teacher.state_dict()
    for name, value in teacher_state.items():
        assert torch.equal(student_state[name], value), name
    # What only the student has is BiT's: binarizer scales and input offsets, untouched.
    assert transfer.student_only
    assert all(name.endswith(("alpha", "input_offset.bias", "_extra_state"))
               for name in transfer.student_only), transfer.student_only
    assert all(not m.initialized for m in student.modules() if isinstance(m, ElasticBinarizer))


def _stage(activation_bits, seed, alpha=None):
    """A chain stage's model (weights 1 bit); ``alpha``: its scales set and marked learned."""
    model = models.build("sparseformer-dn-s", seed=seed, weight_bits=1,
                         activation_bits=activation_bits, **SMALL)
    if alpha is not None:
        for m in model.modules():
            if isinstance(m, ElasticBinarizer):
                m.mark_initialized(alpha)
    return model


def _binarizers(model):
    return [m for m in model.modules() if isinstance(m, ElasticBinarizer)]


def test_a_stage_of_other_levels_starts_its_scales_from_data():
    # W1A4 -> W1A2: the 4-bit step (0.3 here) would set a 2-bit range too narrow; with
    # scales from data the student's quantizers keep their construction value 1.0, not yet
    # initialized, so the first training batch sets them.
    teacher, student = _stage(4, seed=1, alpha=0.3), _stage(2, seed=2)
    transfer = student_from_teacher(student, teacher, scales="data")
    assert len(transfer.rescaled) == len(_binarizers(student)) > 0
    assert all(m.alpha.item() == 1.0 and not m.initialized for m in _binarizers(student))
    # The weights are the teacher's all the same.
    for name, value in teacher.state_dict().items():
        if not name.endswith(("alpha", "_extra_state")):
            assert torch.equal(student.state_dict()[name], value), name


def test_bits_code_keeps_the_teachers_step_at_other_levels():
    teacher, student = _stage(4, seed=1, alpha=0.3), _stage(2, seed=2)
    transfer = student_from_teacher(student, teacher, scales="teacher")
    assert transfer.rescaled == []
    assert all(m.alpha.item() == pytest.approx(0.3) and m.initialized
               for m in _binarizers(student))


def test_a_stage_of_the_same_levels_keeps_the_teachers_scales_either_way():
    for scales in ("data", "teacher"):
        teacher, student = _stage(1, seed=1, alpha=0.7), _stage(1, seed=2)
        assert student_from_teacher(student, teacher, scales=scales).rescaled == []
        assert all(m.alpha.item() == pytest.approx(0.7) and m.initialized
                   for m in _binarizers(student))


def test_an_unknown_scales_rule_is_refused():
    with pytest.raises(DataError, match="student scales 'x'"):
        student_from_teacher(_stage(1, seed=2), _stage(4, seed=1), scales="x")


def test_a_teacher_of_another_shape_is_refused():
    teacher = models.build("sparseformer-dn-s", seed=1, **{**SMALL, "dim": 32})
    student = models.build("bq-sparseformer-dn-s", seed=2, **SMALL)
    with pytest.raises(DataError, match="shape"):
        student_from_teacher(student, teacher)


def test_bit_parameter_groups():
    model = models.build("bq-sparseformer-dn-s", seed=0, **SMALL)
    groups = {g["name"]: g for g in bit_parameter_groups(model, weight_decay=0.01, scale_lr=1e-4)}
    ids = {name: {id(p) for p in g["params"]} for name, g in groups.items()}
    alphas = {id(m.alpha) for m in model.modules() if isinstance(m, ElasticBinarizer)}
    assert alphas and ids["quantizer scales"] == alphas
    assert groups["quantizer scales"]["lr"] == 1e-4
    assert groups["quantizer scales"]["weight_decay"] == 0.0
    norms_and_biases = {id(p) for n, p in model.named_parameters()
                        if n.endswith("bias") or ".norm" in n or "_norm." in n}
    assert norms_and_biases and norms_and_biases <= ids["biases and norms"]
    assert groups["biases and norms"]["weight_decay"] == 0.0
    assert groups["weights"]["weight_decay"] == 0.01
    linear_weights = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Linear)}
    assert linear_weights <= ids["weights"]
    # Every trainable parameter in exactly one group.
    counted = [i for g in ids.values() for i in g]
    assert len(counted) == len(set(counted)) == sum(
        1 for p in model.parameters() if p.requires_grad)


# ------------------------------------------------------------------- through the trainer
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from train_fixtures import tiny_corpus

    return tiny_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory, corpus):
    from train_fixtures import train_settings

    from models.trainer.pretrain.loop import pretrain

    out = tmp_path_factory.mktemp("teacher") / "run"
    pretrain(train_settings(out, corpus, steps=4))
    return out


def _stage_weights(folder):
    from models.trainer.pretrain import checkpoint as ckpt

    return ckpt.load_model_file(ckpt.latest_checkpoint(folder))["model"]


def test_a_distilled_student_starts_from_its_teacher_and_learns_its_outputs(tmp_path, corpus,
                                                                            teacher_run,
                                                                            monkeypatch):
    from models.trainer.pretrain import checkpoint as ckpt
    from models.trainer.pretrain.loop import pretrain
    from models.trainer.pretrain.settings import resolve_settings

    out = tmp_path / "student"
    settings = resolve_settings("bq-sparseformer-dn-s", out, teacher=str(teacher_run), steps=3,
                                batch_size=2, crop_seconds=0.5, warmup_steps=1, save_every=3,
                                log_every=1, valid_every=3, progress=False)
    resolved, loaded = [], []
    resolve_run, load_model_file = ckpt.resolve_run, ckpt.load_model_file
    monkeypatch.setattr(ckpt, "resolve_run", lambda path: resolved.append(path) or
                        resolve_run(path))
    monkeypatch.setattr(ckpt, "load_model_file", lambda folder: loaded.append(folder) or
                        load_model_file(folder))
    result = pretrain(settings)
    # The teacher is resolved once and its weights are read once.
    assert resolved == [str(teacher_run)]
    assert [folder for folder in loaded if teacher_run in folder.parents] == [
        teacher_run / "checkpoints" / "step-00000004"]
    metadata = read_json(out / ckpt.METADATA)
    # Units, data and the model's shape came from the teacher.
    assert metadata["settings"]["clusters"] == 8
    assert metadata["overrides"]["layers"] == 1 and metadata["overrides"]["dim"] == 64
    assert metadata["teacher"]["precision"] == "W32A32" and metadata["teacher"]["step"] == 4
    assert (out / "targets" / "train.km").read_bytes() == \
        (teacher_run / "targets" / "train.km").read_bytes()
    lines = [e for e in read_log(out / ckpt.LOG) if e["split"] == "train"]
    assert all(e["distill_hidden"] > 0 and e["distill_prediction"] > 0 for e in lines)
    assert result.step == 3
    # The student's weights moved away from the teacher's: it trained.
    teacher = _stage_weights(teacher_run)
    student = _stage_weights(out)
    moved = [n for n, w in teacher.items() if torch.is_tensor(w) and w.is_floating_point()
             and not torch.equal(w, student[n])]
    assert moved


def test_a_two_stage_chain_runs_and_resumes_stage_by_stage(tmp_path, corpus, teacher_run):
    from models.trainer.distill.chain import run_chain
    from models.trainer.pretrain import checkpoint as ckpt
    from models.trainer.pretrain.settings import resolve_settings

    def settings(out, **changes):
        return resolve_settings("sparseformer-dn-s", out, teacher=str(teacher_run),
                                chain="W32A32,W1A4,W1A1", steps=2, batch_size=2,
                                crop_seconds=0.5, warmup_steps=1, save_every=1, log_every=1,
                                valid_every=2, progress=False, **changes)

    straight = tmp_path / "straight"
    run_chain(settings(straight))
    first, second = straight / "stage-1-W1A4", straight / "stage-2-W1A1"
    assert read_json(second / ckpt.METADATA)["teacher"]["run"] == str(first.resolve())
    assert read_json(first / ckpt.METADATA)["teacher"]["precision"] == "W32A32"
    assert read_json(second / ckpt.METADATA)["teacher"]["precision"] == "W1A4"
    assert ckpt.read_config(second)["config"]["weight_bits"] == 1

    # Interrupted in stage 2 after its first step, then run again: stage 1 is skipped and
    # stage 2 resumes; the weights equal the uninterrupted chain's.
    interrupted = tmp_path / "interrupted"

    class Stop(Exception):
        pass

    def stop_in_stage_two(step):
        if (interrupted / "stage-2-W1A1" / ckpt.METADATA).is_file() and step == 1:
            raise Stop

    from models.trainer.pretrain import loop as pretrain_module

    original = pretrain_module.pretrain
    pretrain_module.pretrain = lambda s, **kwargs: original(s, on_step=stop_in_stage_two,
                                                            **kwargs)
    try:
        with pytest.raises(Stop):
            run_chain(settings(interrupted))
    finally:
        pretrain_module.pretrain = original
    stage_one = (interrupted / "stage-1-W1A4" / ckpt.METADATA).stat().st_mtime_ns
    run_chain(settings(interrupted))
    assert (interrupted / "stage-1-W1A4" / ckpt.METADATA).stat().st_mtime_ns == stage_one
    expected, resumed = _stage_weights(second), _stage_weights(interrupted / "stage-2-W1A1")
    for name, value in expected.items():
        if torch.is_tensor(value):
            assert torch.equal(value, resumed[name]), name


def test_a_chain_must_start_at_the_teachers_precision(tmp_path, teacher_run):
    from models.trainer.distill.chain import run_chain
    from models.trainer.pretrain.settings import resolve_settings

    with pytest.raises(DataError, match="W32A32"):
        run_chain(resolve_settings("sparseformer-dn-s", tmp_path / "c", teacher=str(teacher_run),
                                   chain="W4A4,W1A1", progress=False))


def test_a_run_recorded_before_student_scales_resumes_with_the_rule_it_ran(tmp_path):
    import json

    from models.trainer.distill.chain import chain_settings_for_resume
    from models.trainer.pretrain.settings import settings_for_resume

    # A record from before the option has no student_scales; its chain kept the teachers'
    # scales, so it resumes with 'teacher' whatever the option's default is.
    stored = {"model": "conformer-s", "teacher": str(tmp_path / "fp"), "steps": 10}
    (tmp_path / "metadata.json").write_text(json.dumps({"settings": stored}))
    assert settings_for_resume(tmp_path, {}).student_scales == "teacher"
    (tmp_path / "chain.json").write_text(json.dumps({"settings": stored}))
    assert chain_settings_for_resume(tmp_path, {}).student_scales == "teacher"
    # A record that names its rule keeps it.
    (tmp_path / "chain.json").write_text(json.dumps({"settings": {**stored,
                                                                   "student_scales": "data"}}))
    assert chain_settings_for_resume(tmp_path, {}).student_scales == "data"


def test_a_chain_resumes_as_a_run_does_given_values_checked_obsolete_keys_dropped(tmp_path):
    import json

    from models.trainer.distill.chain import chain_settings_for_resume

    # A chain and a single run resume through one rule: a value given on the command line
    # that differs from the recorded one is refused (the chain once ignored it), a key the
    # settings no longer have is dropped (it once stopped the resume with a TypeError), and
    # the transient ones replace the recorded ones.
    stored = {"model": "conformer-s", "teacher": str(tmp_path / "fp"), "steps": 10,
              "chain": "W32A32,W1A1", "lr": 0.001, "a_setting_since_removed": 3}
    (tmp_path / "chain.json").write_text(json.dumps({"settings": stored}))
    with pytest.raises(DataError, match="lr was 0.001 in this run, not 0.5"):
        chain_settings_for_resume(tmp_path, {"lr": 0.5})
    settings = chain_settings_for_resume(tmp_path, {"lr": 0.001, "workers": 3})
    assert (settings.steps, settings.workers, settings.out) == (10, 3, str(tmp_path))
    (tmp_path / "chain.json").write_text(json.dumps({"chain": ["W32A32", "W1A1"]}))
    with pytest.raises(DataError, match="has no chain settings"):
        chain_settings_for_resume(tmp_path, {})
