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
    ("missing", "data folder does not exist"),
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
    _one_line_error(cli("train", "--out", tmp_path / "r", "--set", "nonsense"), "KEY=VALUE")


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
                    "data folder does not exist")


def _parse(*argv):
    from models.trainer.pretrain.settings import PretrainSettings
    from models.trainer.superb.settings import SuperbSettings
    from profiler.cli import build_parser
    from profiler.commands.settings_arguments import settings_from_arguments

    args = build_parser(argv[0]).parse_args([str(a) for a in argv])
    settings = PretrainSettings if argv[0] == "train" else SuperbSettings
    return settings_from_arguments(args, settings)


def test_set_reads_booleans_and_none_in_any_case():
    values = _parse("train", "--out", "r", "--set", "flag=false", "--set", "other=TRUE",
                    "--set", "third=None", "--set", "layers=4", "--set", "frontend=wav2vec2")
    assert values["overrides"] == {"flag": False, "other": True, "third": None, "layers": 4,
                                   "frontend": "wav2vec2"}
    assert values["overrides"]["flag"] is False
    # Not given: None, so that the backend's defaults (or a resumed run's settings) apply.
    assert values["steps"] is None and values["tiny"] is None and values["progress"] is None
    assert _parse("train", "--out", "r", "--quiet", "--tiny")["progress"] is False


@pytest.mark.parametrize("command", [
    ["train", "--out", "r"],
    ["superb", "--task", "ks", "--random-init", "x", "--out", "o"]])
def test_old_spellings_still_work_with_a_one_line_notice(capsys, command):
    values = _parse(*command, "--override", "layers=2", "--batch", "4", "--set", "flag=false")
    assert values["overrides"] == {"layers": 2, "flag": False}
    assert values["batch_size"] == 4
    prog = f"profile-encoder {command[0]}"
    assert capsys.readouterr().err.splitlines() == [
        f"{prog}: note: --override is deprecated; use --set",
        f"{prog}: note: --batch is deprecated; use --batch-size"]


def test_override_still_reaches_the_trainer(cli, tmp_path):
    result = cli("train", "--model", TINY_MODEL, "--override", "layers=1", "--out",
                 tmp_path / "run", "--data", tmp_path / "missing", "--quiet")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "profile-encoder train: note: --override is deprecated; use --set",
        f"profile-encoder: error: {tmp_path / 'missing'}: data folder does not exist"]


@pytest.mark.parametrize("command", ["train", "superb", "data"])
def test_every_option_states_its_default(command):
    import argparse

    from profiler.cli import build_parser

    sub = next(a for a in build_parser(command)._actions
               if isinstance(a, argparse._SubParsersAction))
    parsers = [sub.choices[command]]
    if command == "data":
        data_sub = next(a for a in parsers[0]._actions
                        if isinstance(a, argparse._SubParsersAction))
        parsers = list(data_sub.choices.values())
    for parser in parsers:
        for action in parser._actions:
            if action.help in (argparse.SUPPRESS, None) or "-h" in action.option_strings:
                continue
            if not action.option_strings:           # positional (data kmeans MANIFESTS)
                continue
            exclusive = any(action in group._group_actions
                            for group in parser._mutually_exclusive_groups)
            stated = "default" in action.help or "required" in action.help
            assert stated or action.required or exclusive, (command, action.option_strings)
        assert "``" not in parser.format_help()
