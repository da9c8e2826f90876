"""train/superb command lines: bad input is one line on stderr and exit status 2, and
nothing already there is overwritten."""
import pytest

from train_fixtures import TINY_MODEL, TINY_OVERRIDE_ARGS, bad_pretrain_corpus

TRAIN = ["train", "--model", TINY_MODEL, *TINY_OVERRIDE_ARGS, "--steps", "1", "--quiet"]


def _one_line_error(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("kind, needle", [
    ("missing", "no such data folder"),
    ("empty", "empty data folder"),
    ("rate", "sample rate 8000 Hz"),
    ("stereo", "2 channels"),
    ("nan", "not a readable PCM WAV"),
])
def test_train_bad_data(cli, tmp_path, kind, needle):
    data = tmp_path / "data"
    if kind == "empty":
        data.mkdir()
    elif kind != "missing":
        bad_pretrain_corpus(data, kind)
    out = tmp_path / "run"
    result = cli(*TRAIN, "--data", data, "--out", out)
    _one_line_error(result, needle)
    assert not out.exists()            # checked before anything was written


def test_train_unknown_model_and_existing_run(cli, tmp_path):
    _one_line_error(cli("train", "--model", "no-such-model", "--out", tmp_path / "x",
                        "--data", tmp_path), "unknown model", "sparseformer-dn-s")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"keep": "me"}')
    _one_line_error(cli(*TRAIN, "--out", run, "--data", tmp_path), "already holds a training run")
    assert (run / "config.json").read_text() == '{"keep": "me"}'


def test_train_bad_arguments(cli, tmp_path):
    _one_line_error(cli("train", "--model", TINY_MODEL, "--out", tmp_path, "--steps", "0"),
                    "--steps")
    _one_line_error(cli("train", "--out", tmp_path / "r", "--override", "nonsense"),
                    "KEY=VALUE")


def test_superb_bad_input(cli, tmp_path):
    _one_line_error(cli("superb", "--task", "nope", "--random-init", TINY_MODEL, "--out", tmp_path),
                    "invalid choice")
    _one_line_error(cli("superb", "--task", "ks", "--upstream", tmp_path / "nowhere",
                        "--out", tmp_path / "o"), "no such run folder")
    run = tmp_path / "run"
    (run / "checkpoints" / "step-00000001").mkdir(parents=True)
    (run / "config.json").write_text('{"format": "profile-encoder-run/1", "name": "%s", '
                                     '"overrides": {}}' % TINY_MODEL)
    (run / "checkpoints" / "latest").write_text("step-00000001\n")
    (run / "checkpoints" / "step-00000001" / "model.pt").write_bytes(b"PK\x03\x04 truncated")
    out = tmp_path / "eval"
    out.mkdir()
    (out / "results.json").write_text("previous")
    _one_line_error(cli("superb", "--task", "ks", "--upstream", run, "--out", out),
                    "corrupt or truncated")
    assert (out / "results.json").read_text() == "previous"
    _one_line_error(cli("superb", "--task", "ks", "--random-init", TINY_MODEL,
                        *TINY_OVERRIDE_ARGS, "--data", tmp_path / "none", "--out", out),
                    "no such data folder")
