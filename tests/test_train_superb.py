"""SUPERB pieces: weighted sum, heads, CTC decoding, PER, chance levels, one small run."""
import json

import pytest
import torch

from models.trainer.data.datasets import Vocabulary
from models.trainer.superb.heads import UtteranceHead, WeightedSum, greedy_ctc_decode
from models.trainer.superb.tasks.classification import uniform_chance
from models.trainer.superb.tasks.metrics import edit_distance, error_rate
from models.trainer.superb.tasks.pr import constant_answer_chance


def test_weighted_sum_starts_as_the_plain_mean():
    stacked = torch.randn(2, 5, 7, 3)              # (B, L+1, T, D)
    assert torch.allclose(WeightedSum(5)(stacked), stacked.mean(dim=1), atol=1e-6)


def test_pooling_first_equals_the_frame_level_head():
    torch.manual_seed(0)
    head = UtteranceHead(4, 8, 3, projector_dim=6)
    frames = torch.randn(2, 4, 10, 8)              # (B, L+1, T, D)
    per_frame = head.projector(head.featurizer(frames, layer_dim=1)).mean(dim=1)
    assert torch.allclose(head.classifier(per_frame), head(frames.mean(dim=2)), atol=1e-5)


def test_edit_distance_and_error_rate():
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance([1, 2, 3], [1, 3]) == 1
    assert edit_distance([1, 2, 3], [4, 1, 2, 3]) == 1
    assert edit_distance([1, 2, 3], []) == 3
    assert edit_distance([], [5, 6]) == 2
    assert error_rate([[1, 2, 3, 4], [5, 6]], [[1, 2, 3, 4], [6]]) == pytest.approx(1 / 6)


def test_greedy_ctc_decoding_merges_repeats_and_drops_blanks():
    path = torch.tensor([[0, 2, 2, 0, 2, 3, 3, 0, 1]])
    log_probs = torch.nn.functional.one_hot(path, 4).float().log()
    assert greedy_ctc_decode(log_probs, torch.tensor([9])) == [[2, 2, 3, 1]]
    assert greedy_ctc_decode(log_probs, torch.tensor([3])) == [[2]]


def test_a_sequence_head_reads_each_sequence_alone_in_a_padded_batch():
    # Found by an outside read: the ASR/SF BiLSTM ran over the zero padding, so the
    # backward direction started in it and a 5-frame utterance's logits moved by up to 0.12
    # next to a 40-frame one (its transcript depended on the batch it was decoded in).
    from models.trainer.superb.heads import ctc_decode, pad_frames
    from models.trainer.superb.tasks.common import SequenceHead

    torch.manual_seed(0)
    head = SequenceHead(2, 4, 3, hidden=8, layers=1).eval()
    short, long = torch.randn(2, 5, 4), torch.randn(2, 40, 4)
    padded, lengths = pad_frames([short, long])
    with torch.no_grad():
        alone = head(short[None])[0]
        batched = head(padded, lengths)
    assert torch.allclose(batched[0, :5], alone, atol=1e-6)
    assert torch.allclose(batched[1], head(long[None])[0], atol=1e-6)
    assert ctc_decode(head, [short, long], batch=2) == \
        ctc_decode(head, [short], batch=1) + ctc_decode(head, [long], batch=1)


def test_chance_levels():
    vocabulary = Vocabulary(["a", "b", "c", "d"])
    chance, text, extra = uniform_chance(vocabulary, [0, 0, 1, 2], "classes")
    assert chance == 0.25 and "1 / 4" in text and extra["majority_class_rate_test"] == 0.5
    chance, text, _ = constant_answer_chance(vocabulary, [[1, 1, 2]], [[1, 2, 3, 1]])
    # constant answer [1] against [1, 2, 3, 1]: 3 deletions out of 4
    assert chance == pytest.approx(0.75) and "'b'" in text


def test_keyword_spotting_run_writes_results(tmp_path):
    from train_fixtures import TINY_MODEL, TINY_OVERRIDES, tiny_corpus

    from models.trainer.superb.runner import run_superb
    from models.trainer.superb.settings import SuperbSettings

    data = tiny_corpus(tmp_path / "corpus", tasks=("ks",))
    out = tmp_path / "eval"
    results = run_superb(SuperbSettings(task="ks", out=str(out), random_init=TINY_MODEL,
                                        overrides=dict(TINY_OVERRIDES),
                                        data=str(data), steps=20, eval_every=10,
                                        progress=False))
    saved = json.loads((out / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert {"task", "metric", "value", "chance", "settings", "chance_definition"} <= set(saved)
    assert saved["task"] == "ks" and saved["metric"] == "accuracy"
    assert saved["chance"] == pytest.approx(1 / 12, abs=1e-6)
    assert saved["interval"][0] <= saved["value"] <= saved["interval"][1]
    assert 0.0 <= saved["value"] <= 1.0 and saved["upstream"]["kind"] == "random-init"
    assert len(saved["layer_weights"]) == TINY_OVERRIDES["layers"] + 1
    assert (out / "head.pt").is_file()


def test_heads_can_leave_out_hidden_state_zero(tmp_path):
    from train_fixtures import TINY_MODEL, TINY_OVERRIDES, tiny_corpus

    import models
    from models.trainer.superb.heads import extract_features
    from models.trainer.superb.runner import run_superb
    from models.trainer.superb.settings import SuperbSettings

    data = tiny_corpus(tmp_path / "corpus", tasks=("ks",))
    saved = run_superb(SuperbSettings(task="ks", out=str(tmp_path / "eval"),
                                      random_init=TINY_MODEL, overrides=dict(TINY_OVERRIDES),
                                      data=str(data), steps=4, eval_every=2, progress=False,
                                      hidden_states="1-L"))
    layers = TINY_OVERRIDES["layers"]
    assert len(saved["layer_weights"]) == layers          # states 1..L, not 0..L
    assert saved["settings"]["hidden_states"] == f"1..{layers} (state 0 left out)"
    # What the heads read is the full extraction without its first state.
    model = models.build(TINY_MODEL, **TINY_OVERRIDES).eval()
    dataset = [{"waveform": torch.randn(8000)}]

    class OneUtterance(list):
        lengths = [8000]

    full, later = (extract_features(model, OneUtterance(dataset), pool=True, batch_size=1,
                                    device=torch.device("cpu"), progress=False, desc="",
                                    first_state=first) for first in (0, 1))
    assert torch.equal(later[0], full[0][1:])


def test_one_extraction_trains_the_heads_with_and_without_state_zero(tmp_path, monkeypatch):
    """--also-without-state0: the second evaluation is the one a run of its own with
    --hidden-states 1-L gives (same score, items, layer weights), and the first the one
    a plain run gives; the pair extracts the states once."""
    from train_fixtures import TINY_MODEL, TINY_OVERRIDES, tiny_corpus

    from models.trainer.superb import heads
    from models.trainer.superb.runner import run_superb
    from models.trainer.superb.settings import SuperbSettings

    data = tiny_corpus(tmp_path / "corpus", tasks=("pr",))
    common = dict(task="pr", random_init=TINY_MODEL, overrides=dict(TINY_OVERRIDES),
                  data=str(data), steps=6, eval_every=3, progress=False, seed=3)
    alone = {hidden: run_superb(SuperbSettings(out=str(tmp_path / hidden),
                                               hidden_states=hidden, **common))
             for hidden in ("all", "1-L")}
    calls = []
    original = heads.extract_features

    def counted(*args, **kwargs):
        calls.append(kwargs["desc"])
        return original(*args, **kwargs)

    monkeypatch.setattr("models.trainer.superb.tasks.common.extract_features", counted)
    run_superb(SuperbSettings(out=str(tmp_path / "pair"),
                              also_without_state0=str(tmp_path / "pair-1L"), **common))
    assert calls == ["superb pr train", "superb pr valid", "superb pr test"]  # once each
    for folder, hidden in (("pair", "all"), ("pair-1L", "1-L")):
        saved = json.loads((tmp_path / folder / "results.json").read_text())
        reference = alone[hidden]
        for key in ("value", "interval", "valid_value", "best_step", "layer_weights",
                    "settings"):
            assert saved[key] == reference[key], (folder, key)
        assert (json.loads((tmp_path / folder / "per_item.json").read_text())
                == json.loads((tmp_path / hidden / "per_item.json").read_text()))
    second = json.loads((tmp_path / "pair-1L" / "results.json").read_text())
    assert second["wall_seconds"]["features"] == 0.0
    assert second["features_extracted_by"] == str((tmp_path / "pair").resolve())


@pytest.mark.parametrize("changes, needle", [
    (dict(hidden_states="1-L"), "already reads states 1..L"),
    (dict(also_without_state0="SAME"), "the same folder as --out"),
])
def test_a_pair_that_cannot_be_is_one_line(tmp_path, changes, needle):
    from models.trainer.errors import DataError
    from models.trainer.superb.runner import run_superb
    from models.trainer.superb.settings import SuperbSettings

    out = tmp_path / "eval"
    values = dict(task="ks", out=str(out), random_init="conformer-s",
                  also_without_state0=str(tmp_path / "other"))
    values.update({k: str(out) if v == "SAME" else v for k, v in changes.items()})
    with pytest.raises(DataError, match=needle):
        run_superb(SuperbSettings(**values))
    assert not out.exists()


def test_a_deployed_upstream_is_what_the_heads_read(tmp_path, monkeypatch):
    """--deployed: the heads read the hidden states of models.deploy's packed model (that
    the packed model computes the simulation's products is test_deploy's), and the run
    says so in results.json; a float upstream or another device is refused in one line."""
    from train_fixtures import TINY_OVERRIDES, tiny_corpus

    import models
    from models.deployment.linear import PackedLinear
    from models.trainer.superb import runner
    from models.trainer.superb.settings import SuperbSettings

    data = tiny_corpus(tmp_path / "corpus", tasks=("ks",))
    called = []
    original = runner.deployed_upstream

    def spy(model):
        deployed = original(model)
        called.append(any(isinstance(m, PackedLinear) for m in deployed.modules()))
        return deployed

    monkeypatch.setattr(runner, "deployed_upstream", spy)
    saved = runner.run_superb(SuperbSettings(
        task="ks", out=str(tmp_path / "eval"), random_init="bq-sparseformer-dn-s",
        overrides=dict(TINY_OVERRIDES), data=str(data), steps=4, eval_every=2,
        progress=False, deployed=True, device="cpu"))
    assert called == [True]
    assert saved["upstream"]["deployed"] == "packed W1A1 kernels (models.deploy)"
    assert 0.0 <= saved["value"] <= 1.0
    # A float upstream has nothing to deploy: one line, no traceback.
    float_model = models.build("sparseformer-dn-s", **TINY_OVERRIDES)
    with pytest.raises(runner.DataError, match="--deployed: .*no binarized"):
        runner.check_deployable(float_model, torch.device("cpu"))
    with pytest.raises(runner.DataError, match="CPU only"):
        runner.check_deployable(float_model, torch.device("meta"))


def test_deployed_refuses_a_float_upstream_in_one_line(cli, tmp_path):
    result = cli("superb", "--task", "ks", "--out", tmp_path / "eval", "--random-init",
                 "sparseformer-dn-s", "--deployed", "--device", "cpu", "--quiet",
                 *[arg for key, value in {"layers": 1, "dim": 64, "heads": 2}.items()
                   for arg in ("--set", f"{key}={value}")])
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "no binarized" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "eval").exists()


@pytest.mark.parametrize("task, metric, test_items", [("sid", "accuracy", 4 * 1),
                                                     ("pr", "per", 3)])
def test_sid_and_pr_runs_write_an_interval_over_their_test_items(tmp_path, task, metric,
                                                                 test_items):
    from train_fixtures import TINY_MODEL, TINY_OVERRIDES, tiny_corpus

    from models.trainer.superb.runner import run_superb
    from models.trainer.superb.settings import SuperbSettings

    # The tiny preset: SID 4 speakers x 1 test utterance, PR 3 test sentences.
    data = tiny_corpus(tmp_path / "corpus", tasks=(task,))
    results = run_superb(SuperbSettings(task=task, out=str(tmp_path / "eval"),
                                        random_init=TINY_MODEL, overrides=dict(TINY_OVERRIDES),
                                        data=str(data), steps=4, eval_every=2, progress=False))
    low, high = results["interval"]
    assert results["metric"] == metric and 0.0 <= low <= high
    assert f"over the {test_items} test items" in results["interval_method"]


def test_a_random_init_binarized_upstream_gets_bits_data_based_scales(tmp_path):
    import torch
    from train_fixtures import TINY_OVERRIDES, tiny_corpus

    import models
    from models.bit import ElasticBinarizer
    from models.trainer.data.audio import read_audio
    from models.trainer.data.manifest import read_manifest
    from models.trainer.superb.runner import INIT_UTTERANCES, initialize_random_quantizers

    data = tiny_corpus(tmp_path / "corpus", tasks=("ks",))
    model = models.build("bq-sparseformer-dn-s", seed=0, **TINY_OVERRIDES).eval()
    assert all(m.alpha.item() == 1.0 for m in model.modules() if isinstance(m, ElasticBinarizer))
    used = initialize_random_quantizers(model, data / "ks", torch.device("cpu"), seed=0)
    manifest = read_manifest(data / "ks" / "train.tsv")
    assert used == min(INIT_UTTERANCES, len(manifest)) and not model.training
    binarizers = [m for m in model.modules() if isinstance(m, ElasticBinarizer)]
    assert all(m.initialized for m in binarizers)
    # The first Linear's binarizer: its scale is BiT's 2 x mean|x| of its input on the same
    # batch with the same dropout (a hand check of one scale, through a forward hook).
    seen = {}
    first = next(m for m in model.encoder.modules() if isinstance(m, models.BinaryLinear))
    handle = first.input_binarizer.register_forward_pre_hook(
        lambda module, args: seen.setdefault("x", args[0].detach()))
    waves = [torch.from_numpy(read_audio(manifest.audio_path(i))) for i in range(used)]
    shortest = min(w.numel() for w in waves)
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        with torch.no_grad():
            model(torch.stack([w[:shortest] for w in waves]))
    handle.remove()
    assert first.input_binarizer.alpha.item() == pytest.approx(
        2.0 * seen["x"].abs().mean().item(), rel=1e-4)
    # Nothing to do for a float model.
    assert initialize_random_quantizers(models.build("sparseformer-dn-s", **TINY_OVERRIDES),
                                        data / "ks", torch.device("cpu"), seed=0) == 0


@pytest.mark.parametrize("pool", [True, False])
def test_batched_extraction_gives_each_utterance_its_own_states(pool):
    # Utterances of different lengths share padded batches; each one's states must be the
    # ones it gets alone (batch size 1), cut to its own frames.
    from train_fixtures import TINY_MODEL, TINY_OVERRIDES

    import models
    from models.trainer.superb.heads import extract_features

    model = models.build(TINY_MODEL, **TINY_OVERRIDES).eval()
    torch.manual_seed(0)
    sizes = [8_000, 5_120, 6_400, 8_000, 7_001]

    class Utterances(list):
        lengths = sizes

    dataset = Utterances({"waveform": torch.randn(n)} for n in sizes)
    batched, alone = (extract_features(model, dataset, pool=pool, batch_size=size,
                                       device=torch.device("cpu"), progress=False, desc="")
                      for size in (4, 1))
    for index, (together, own) in enumerate(zip(batched, alone)):
        assert together.shape == own.shape and not together.requires_grad  # no graph kept
        if not pool:
            assert own.shape[1] == model.frames(sizes[index])
        torch.testing.assert_close(together, own, rtol=1e-4, atol=1e-4)


def test_states_past_the_memory_limit_go_to_a_file_with_the_same_values(tmp_path,
                                                                        monkeypatch):
    # Frame-level states expected to pass the limit live in a mapped temporary file; the
    # heads must read exactly the values extraction in memory gives.
    import tempfile

    from train_fixtures import TINY_MODEL, TINY_OVERRIDES

    import models
    from models.trainer.superb.heads import extract_features

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))   # where the file would show
    model = models.build(TINY_MODEL, **TINY_OVERRIDES).eval()
    torch.manual_seed(0)
    sizes = [8_000, 5_120, 6_400, 7_001]

    class Utterances(list):
        lengths = sizes

    dataset = Utterances({"waveform": torch.randn(n)} for n in sizes)
    run = dict(pool=False, batch_size=2, device=torch.device("cpu"), progress=False, desc="")
    in_memory = extract_features(model, dataset, limit_bytes=10**15, **run)
    in_file = extract_features(model, dataset, limit_bytes=0, **run)
    layers = model.config.layers + 1
    for index, (kept, mapped) in enumerate(zip(in_memory, in_file)):
        assert mapped.shape == (layers, model.frames(sizes[index]), model.config.dim)
        assert torch.equal(kept, mapped)
        assert str(tmp_path) in mapping_of(mapped)           # not a copy in memory
        assert str(tmp_path) not in mapping_of(kept)
    assert list(tmp_path.iterdir()) == []          # the file is unnamed: nothing left over
    pooled = extract_features(model, dataset, limit_bytes=0, **{**run, "pool": True})
    assert str(tmp_path) not in mapping_of(pooled[0])          # (S, D) stays in memory


def mapping_of(tensor) -> str:
    """The line of /proc/self/maps whose address range holds the tensor's data."""
    address = tensor.data_ptr()
    with open("/proc/self/maps", encoding="utf-8") as maps:
        for line in maps:
            start, end = (int(part, 16) for part in line.split()[0].split("-"))
            if start <= address < end:
                return line
    return ""


def test_length_batches_cap_utterances_and_padded_samples():
    from models.trainer.superb.heads import length_batches

    lengths = [30, 10, 20, 10, 100, 25]
    # Sorted: 10 (1), 10 (3), 20 (2), 25 (5), 30 (0), 100 (4). At most 3 per batch and
    # 60 padded samples: [1, 3, 2] pads to 3 x 20 = 60; 25 and 30 pad to 2 x 30 = 60;
    # 100 exceeds the cap and goes alone.
    assert length_batches(lengths, 3, 60) == [[1, 3, 2], [5, 0], [4]]
    assert length_batches(lengths, 2) == [[1, 3], [2, 5], [0, 4]]
    assert length_batches(lengths, 1, 60) == [[1], [3], [2], [5], [0], [4]]
