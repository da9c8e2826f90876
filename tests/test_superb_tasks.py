"""The SUPERB tasks: each head learns a trivially separable case (features given
directly, no upstream), the synthetic splits are held out, the QbE DTW finds a planted
match, and the label parsers read what the writers write."""
import numpy as np
import pytest
import torch

from models.trainer.data.datasets import Vocabulary
from models.trainer.data.synth_plan import PRESETS, voice_splits
from models.trainer.superb.heads import HeadSettings
from models.trainer.superb.task_table import SUPERB_TASKS
from models.trainer.superb.tasks import TASKS, get_task
from models.trainer.superb.tasks.common import Features


@pytest.fixture(autouse=True)
def one_thread():
    # Small recurrent heads run faster on one thread than on two contended ones.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(steps=120, batch_size=8, lr=1e-2, eval_every=40):
    return HeadSettings(steps=steps, batch_size=batch_size, lr=lr, eval_every=eval_every,
                        projector_dim=32, seed=0, progress=False)


def pooled(vectors):
    """(N, D) vectors as per-layer means of a 2-layer upstream: (L+1=3, D) each."""
    return Features(None, [torch.stack([v, v, v]) for v in vectors])


def frames(sequences):
    return Features(None, [torch.stack([s, s]) for s in sequences])


def test_every_task_is_registered_with_a_task_object():
    assert set(TASKS) == set(SUPERB_TASKS) == {"ks", "sid", "pr", "asr", "sd", "asv", "ic", "sf",
                                               "qbe", "er"}
    for name in TASKS:
        task = get_task(name)
        assert task.name == name and set(task.sizes) == set(PRESETS)
        assert task.metric == SUPERB_TASKS[name].metric


def test_ks_sid_and_pr_plan_as_parts_of_the_corpus_of_train():
    """Their corpora stay those ``train`` synthesizes: the same generator numbers and plans."""
    from models.trainer.data.synth_plan import TASKS as CORPUS_TASKS
    from models.trainer.data.synth_plan import plan_task
    from models.trainer.superb.tasks.common import SYNTHESIS_NUMBERS

    for name in ("ks", "sid", "pr"):
        task = get_task(name)
        assert SYNTHESIS_NUMBERS[name] == CORPUS_TASKS.index(name)
        assert task.plan(PRESETS["tiny"], task.rng(3), 3) == plan_task(name, PRESETS["tiny"], 3)


def test_voice_splits_hold_out_accents_and_variants():
    pools = voice_splits(np.random.default_rng(0))
    accents = {split: {a for a, _ in pool} for split, pool in pools.items()}
    variants = {split: {v for _, v in pool} for split, pool in pools.items()}
    for one, other in (("train", "valid"), ("train", "test"), ("valid", "test")):
        assert not accents[one] & accents[other] and not variants[one] & variants[other]


def test_asr_test_sentences_use_held_out_templates_and_words():
    from models.trainer.data.held_out_text import split_words

    plans = get_task("asr").plan(get_task("asr").sizes["small"], np.random.default_rng(0), 0)
    train_words = {w for p in plans if p.split == "train" for w in p.text.split()}
    test_words = {w for p in plans if p.split == "test" for w in p.text.split()}
    held_out = {w for words in split_words(True).values() for w in words}
    content = test_words & {w for words in split_words(False).values() for w in words}
    assert not content, content          # no training content word in a test sentence
    assert test_words & held_out and not train_words & held_out


def test_er_head_learns_separable_classes():
    torch.manual_seed(0)
    task = get_task("er")
    y = {split: torch.arange(4).repeat(n) for split, n in (("train", 8), ("valid", 2),
                                                            ("test", 3))}
    features = {split: pooled(torch.eye(4)[labels] * 3 + 0.1 * torch.randn(len(labels), 4))
                for split, labels in y.items()}
    outcome = task.evaluate(features, {"vocabulary": Vocabulary(list("abcd")), "targets": y},
                            run())
    assert outcome.value == 1.0 and outcome.interval == (1.0, 1.0)
    assert outcome.chance == 0.25
    # the record names the head it trained: run()'s projector of 32, not the default 256
    assert outcome.head_description.startswith("weighted sum + Linear(D, 32) + mean pooling")


def test_ic_head_learns_all_three_slots():
    torch.manual_seed(0)
    task = get_task("ic")
    intents = torch.tensor([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0], [2, 2, 2]])
    y = {split: intents.repeat(n, 1) for split, n in (("train", 6), ("valid", 2), ("test", 2))}

    def encode(rows):
        return torch.cat([torch.eye(3)[rows[:, k]] for k in range(3)], dim=1) * 3

    features = {split: pooled(encode(rows)) for split, rows in y.items()}
    labels = {"vocabularies": [Vocabulary(list("abc"))] * 3, "targets": y, "intents": 5}
    outcome = task.evaluate(features, labels, run())
    assert outcome.value == 1.0 and outcome.chance == pytest.approx(0.2)
    assert "Linear(D, 32)" in outcome.head_description


def test_asv_embeddings_separate_unseen_speakers():
    torch.manual_seed(0)
    task = get_task("asv")
    speakers = torch.randn(8, 16)       # 0-3 train, 4-5 valid, 6-7 test

    def utterances(ids):
        return speakers[ids] + 0.05 * torch.randn(len(ids), 16)

    train_ids = torch.arange(4).repeat(6)
    trials = np.array([[1, 0, 1], [1, 2, 3], [0, 0, 2], [0, 1, 3], [0, 0, 3], [0, 1, 2]])
    features = {"train": pooled(utterances(train_ids)),
                "valid": pooled(utterances(torch.tensor([4, 4, 5, 5]))),
                "test": pooled(utterances(torch.tensor([6, 6, 7, 7])))}
    labels = {"speakers": 4, "train": train_ids, "valid": trials, "test": trials}
    outcome = task.evaluate(features, labels, run(steps=60))
    assert outcome.value == 0.0 and outcome.chance == 0.5
    assert "Linear(D, 32) + mean pooling + Linear(32, 128) embedding" in outcome.head_description


def one_hot_frames(symbols, size, gap=True):
    """Each symbol held for 3 frames, a zero frame between symbols (where CTC puts blanks)."""
    rows = []
    for s in symbols:
        rows += [torch.eye(size)[s] * 3] * 3 + ([torch.zeros(size)] if gap else [])
    return torch.stack(rows)


def test_asr_head_learns_to_spell_from_separable_frames():
    from models.trainer.data.manifest import letters_line

    torch.manual_seed(0)
    task = get_task("asr")
    vocabulary = Vocabulary(["a", "b", "c", "|"])
    rng = np.random.default_rng(0)
    words = {split: [" ".join("".join(rng.choice(list("abc"), 2)) for _ in range(2))
                     for _ in range(n)] for split, n in (("train", 24), ("valid", 4), ("test", 4))}
    targets = {s: [vocabulary.encode(letters_line(w).split()[:-1]) for w in ws]
               for s, ws in words.items()}
    features = {s: frames([one_hot_frames(t, 4) for t in ts]) for s, ts in targets.items()}
    labels = {"vocabulary": vocabulary, "targets": targets, "words": words}
    outcome = task.evaluate(features, labels, run(steps=150, lr=1e-2, eval_every=50))
    assert outcome.value == 0.0
    assert outcome.chance > 0.5


def test_sf_head_learns_slot_tags_from_separable_frames():
    from models.trainer.superb.tasks.sf import parse_slots

    torch.manual_seed(0)
    task = get_task("sf")
    symbols = ["a", "b", "|", "<x>", "<y>", "</>"]
    vocabulary = Vocabulary(symbols)
    lines = {"train": [["a", "|", "<x>", "b", "</>"], ["<y>", "a", "b", "</>"],
                       ["b", "|", "<y>", "a", "</>"], ["<x>", "a", "</>", "|", "b"]] * 6,
             "valid": [["a", "|", "<x>", "b", "</>"], ["<y>", "a", "b", "</>"]],
             "test": [["b", "|", "<y>", "a", "</>"], ["<x>", "a", "</>", "|", "b"]]}
    targets = {s: [vocabulary.encode(line) for line in ls] for s, ls in lines.items()}
    features = {s: frames([one_hot_frames(t, 6) for t in ts]) for s, ts in targets.items()}
    labels = {"vocabulary": vocabulary, "targets": targets,
              "slots": {s: [parse_slots(line) for line in ls] for s, ls in lines.items()}}
    outcome = task.evaluate(features, labels, run(steps=150, lr=1e-2, eval_every=50))
    assert outcome.value == 1.0 and outcome.extra["slot_value_cer"] == 0.0


def test_sd_head_learns_activity_given_as_features():
    from models.trainer.superb.tasks.sd import FRAME_SECONDS

    torch.manual_seed(0)
    task = get_task("sd")
    rng = np.random.default_rng(0)

    def mixture():
        # A speaks frames 0-39, B 30-79 (10 frames of overlap), silence 80-99; 20 ms frames.
        shift = int(rng.integers(0, 10))
        a, b = (shift, 40 + shift), (30 + shift, 80)
        activity = torch.zeros(100, 2)
        activity[a[0]:a[1], 0] = 1
        activity[b[0]:b[1], 1] = 1
        features = torch.cat([activity * 3, 0.1 * torch.randn(100, 2)], dim=1)
        segments = [("A", a[0] * FRAME_SECONDS + 0.0125 - 0.01, a[1] * FRAME_SECONDS),
                    ("B", b[0] * FRAME_SECONDS, b[1] * FRAME_SECONDS)]
        return features, (segments, ["A", "B"], 100 * FRAME_SECONDS)

    data = {s: [mixture() for _ in range(n)] for s, n in (("train", 16), ("valid", 2),
                                                            ("test", 3))}
    features = {s: frames([f for f, _ in items]) for s, items in data.items()}
    labels = {s: [lab for _, lab in items] for s, items in data.items()}
    outcome = task.evaluate(features, labels, run(steps=150, lr=1e-2, eval_every=50))
    assert outcome.value < 0.05 and outcome.chance > 0.3


def test_qbe_dtw_finds_a_planted_query():
    from models.trainer.superb.tasks.qbe import subsequence_dtw_scores

    torch.manual_seed(0)
    query = torch.randn(5, 8)
    host = torch.cat([torch.randn(7, 8), query.repeat_interleave(2, dim=0), torch.randn(3, 8)])
    other = torch.randn(20, 8)
    scores = subsequence_dtw_scores(query, [host, other])
    assert scores[0] == pytest.approx(0.0, abs=1e-5) and scores[1] < -0.3


def test_qbe_picks_a_layer_and_detects_every_planted_term():
    torch.manual_seed(0)
    task = get_task("qbe")
    features, truth = {}, {}
    for group in ("valid", "test"):
        terms = [torch.randn(4, 8) for _ in range(3)]
        documents, table = [], np.zeros((3, 6), dtype=bool)
        for k in range(6):
            parts = [torch.randn(5, 8)]
            if k < 3:
                parts.append(terms[k])
                table[k, k] = True
            documents.append(torch.cat(parts + [torch.randn(5, 8)]))
        # layer 0 is noise, layer 1 carries the signal
        features[f"queries_{group}"] = Features(None, [torch.stack([torch.randn(4, 8), t])
                                                       for t in terms])
        features[f"docs_{group}"] = Features(None, [torch.stack([torch.randn(len(d), 8), d])
                                                    for d in documents])
        truth[group] = table
    outcome = task.evaluate(features, truth, run())
    assert outcome.value == pytest.approx(1.0) and outcome.extra["best_layer"] == 1


def test_rttm_round_trip_and_frame_labels(tmp_path):
    from models.trainer.superb.tasks.sd import frame_labels, read_rttm

    path = tmp_path / "x.rttm"
    path.write_text("SPEAKER f1 1 0.00 0.10 <NA> <NA> A <NA> <NA>\n"
                    "SPEAKER f1 1 0.05 0.05 <NA> <NA> B <NA> <NA>\n")
    segments = read_rttm(path)["f1"]
    assert segments == [("A", 0.0, 0.1), ("B", 0.05, pytest.approx(0.1))]
    # frame centres 0.0125, 0.0325, 0.0525, 0.0725, 0.0925, 0.1125 s
    labels = frame_labels(segments, ["A", "B"], 6)
    assert labels[:, 0].tolist() == [1, 1, 1, 1, 1, 0]
    assert labels[:, 1].tolist() == [0, 0, 1, 1, 1, 0]


def test_slot_tags_parse_back():
    from models.trainer.superb.tasks.sf import parse_slots, tagged_symbols

    symbols = tagged_symbols("call {person} at {time}", {"person": "sarah", "time": "ten pm"})
    assert " ".join(symbols) == "c a l l | <person> s a r a h </> | a t | <time> t e n | p m </>"
    assert parse_slots(symbols) == {"person": ["sarah"], "time": ["ten pm"]}
    assert parse_slots(["<a>", "x", "<b>", "y"]) == {"a": ["x"], "b": ["y"]}


@pytest.fixture(scope="module")
def tiny_task_corpus(tmp_path_factory):
    from models.trainer.superb.tasks.common import synthesize_tasks

    root = tmp_path_factory.mktemp("tasks") / "corpus"
    synthesize_tasks(root, list(TASKS), size="tiny", progress=False)
    return root


@pytest.mark.slow
def test_every_task_runs_end_to_end(tiny_task_corpus, tmp_path):
    import json

    from train_fixtures import TINY_MODEL, TINY_OVERRIDES

    from models.trainer.superb.runner import SuperbSettings, run_superb

    for task in TASKS:
        out = tmp_path / task
        results = run_superb(SuperbSettings(task=task, out=str(out), random_init=TINY_MODEL,
                                            overrides=dict(TINY_OVERRIDES),
                                            data=str(tiny_task_corpus), steps=2, eval_every=1,
                                            progress=False))
        saved = json.loads((out / "results.json").read_text())
        assert saved == json.loads(json.dumps(results))
        assert saved["task"] == task and saved["metric"] == get_task(task).metric
        low, high = saved["interval"]
        assert low <= high and {"value", "chance", "chance_definition"} <= set(saved)
        assert (out / "head.pt").is_file() == get_task(task).trains
        # Where the metric is a ratio of per-item sums, those parts are written for paired
        # comparisons, one per test item, and they add up to the reported value.
        per_item = out / "per_item.json"
        assert per_item.is_file() == (task not in ("asv", "qbe")), task
        if per_item.is_file():
            record = json.loads(per_item.read_text())
            test_lines = (tiny_task_corpus / task / "test.tsv").read_text().splitlines()
            assert len(record["items"]) == len(test_lines) - 1  # the root line
            assert len(record["numerators"]) == len(record["denominators"]) == \
                len(record["items"])
            assert sum(record["numerators"]) / sum(record["denominators"]) == \
                pytest.approx(saved["value"], abs=1e-6)
    assert "proxy" in saved["task_name"] and "proxy" in saved["proxy"]   # er comes last


def test_a_random_init_binarized_upstream_runs_qbe_which_has_no_training_split(
        tiny_task_corpus, tmp_path):
    from train_fixtures import TINY_MODEL, TINY_OVERRIDES

    from models.trainer.superb.runner import SuperbSettings, run_superb

    # QbE trains nothing, so its folder has no train.tsv; a binarized random-init upstream's
    # scales start from its first split's utterances instead of stopping the evaluation.
    assert not (tiny_task_corpus / "qbe" / "train.tsv").exists()
    results = run_superb(SuperbSettings(task="qbe", out=str(tmp_path / "qbe"),
                                        random_init=f"bq-{TINY_MODEL}",
                                        overrides=dict(TINY_OVERRIDES),
                                        data=str(tiny_task_corpus), progress=False))
    assert "queries_valid split" in results["upstream"]["quantizer_scales"]
    assert (tmp_path / "qbe" / "results.json").is_file()


def test_superb_cli_bad_task_folders(cli, tiny_task_corpus, tmp_path):
    import shutil

    from train_fixtures import TINY_MODEL, TINY_OVERRIDE_ARGS

    data = tmp_path / "data"
    shutil.copytree(tiny_task_corpus / "ic", data / "ic")
    base = ["superb", "--random-init", TINY_MODEL, *TINY_OVERRIDE_ARGS, "--quiet",
            "--data", data, "--out", tmp_path / "out"]
    for task, needle in (("asr", "no automatic speech recognition corpus"),
                         ("ic", "expected 'relative/path<TAB>num_samples'")):
        if task == "ic":
            (data / "ic" / "test.tsv").write_text(f"{data / 'ic'}\nbroken line\n")
        result = cli(*base[:1], "--task", task, *base[1:])
        assert result.returncode == 2, result.stderr[-2000:]
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("profile-encoder: error:"), lines
        assert needle in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "results.json").exists()
