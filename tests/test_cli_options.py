"""One declaration per option, one parser per kind of value: the same bad comma list or
device is refused in the same words by every command that takes it, and the study's comma
lists gather across repeats like every other command's."""
import argparse

import pytest

from profiler.cli import build_parser
from profiler.commands.settings_arguments import settings_from_arguments

# Every command's required options, so that only the option under test can fail.
REQUIRED = {"table": [], "check": [], "measure": [], "profile": ["--model", "vanilla"],
            "calibrate": ["--output", "x.yaml"], "study": [],
            "train": ["--out", "o", "--model", "vanilla"],
            "superb": ["--out", "o", "--task", "ks", "--random-init", "vanilla"]}
COMMA_LISTS = [("table", "--models"), ("check", "--models"), ("measure", "--models"),
               ("measure", "--seconds"), ("study", "--models"), ("study", "--tasks")]
DEVICES = ("profile", "measure", "calibrate", "train", "superb", "study")


def parse(command, *words):
    return build_parser(command).parse_args([command, *REQUIRED[command], *words])


def refusal(capsys, command, *words) -> str:
    with pytest.raises(SystemExit) as exit:
        parse(command, *words)
    assert exit.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"profile-encoder {command}: error:")
    return lines[0]


@pytest.mark.parametrize("command, option", COMMA_LISTS)
@pytest.mark.parametrize("text", [",", " , ,", ""])
def test_every_comma_list_refuses_an_empty_list_alike(capsys, command, option, text):
    line = refusal(capsys, command, option, text)
    assert f"argument {option}: expected a comma-separated list of " in line
    assert line.endswith(f"got {text!r}")


def test_a_bad_number_in_a_list_is_named():
    with pytest.raises(argparse.ArgumentTypeError, match="expected a positive number, got '0'"):
        from profiler.commands.arguments import comma_list, positive_float

        comma_list(positive_float, "positive numbers")("1,0")


@pytest.mark.parametrize("command", DEVICES)
def test_every_device_option_refuses_an_unknown_device_alike(capsys, command):
    line = refusal(capsys, command, "--device", "tpu")
    expected = "meta, cpu or cuda" if command == "profile" else "cpu or cuda"
    assert line.endswith(f"argument --device: 'tpu': expected {expected}")


@pytest.mark.parametrize("command", DEVICES)
def test_every_device_option_takes_the_cpu(command):
    assert parse(command, "--device", "cpu").device == "cpu"


def test_the_trainer_checks_a_device_with_the_same_function():
    from models.trainer.pretrain.distributed import pick_device

    with pytest.raises(ValueError, match="'tpu': expected cpu or cuda"):
        pick_device(0, "tpu")
    assert str(pick_device(0, "cpu")) == "cpu"


def test_study_models_and_tasks_gather_across_repeats():
    from models.trainer.study.settings import StudySettings

    args = parse("study", "--models", "conformer-s", "--models", "vanilla, wav2vec2-s",
                 "--tasks", "ks", "--tasks", "asr")
    values = settings_from_arguments(args, StudySettings)
    assert values["models"] == "conformer-s,vanilla,wav2vec2-s"
    assert values["tasks"] == "ks,asr"
    assert settings_from_arguments(parse("study"), StudySettings)["models"] is None


def test_measure_models_gather_across_repeats_and_the_old_spelling(capsys):
    args = parse("measure", "--models", "vanilla,conformer-s", "--model", "bq-vanilla")
    assert args.models == ["vanilla", "conformer-s", "bq-vanilla"]
    assert "--model is deprecated; use --models" in capsys.readouterr().err
    assert parse("measure", "--seconds", "1, 2.5").seconds == [1.0, 2.5]
    assert parse("measure").seconds == [10.0] and parse("table").seconds == 10.0   # the paper's


def test_the_trainers_bad_input_is_one_line_and_exit_2_through_main(tmp_path, capsys):
    """cli.main turns the trainer's DataError into one line and status 2 for every command
    (study and sweep --accuracy each caught it themselves before)."""
    from profiler.cli import main

    for argv in (["study", "--out", str(tmp_path / "none"), "--report", "--reports",
                  str(tmp_path / "r")],
                 ["sweep", "--family", "transformer", "--layers", "1", "--dim", "64",
                  "--heads", "2", "--bits", "W1A1", "--out", str(tmp_path / "sweep"),
                  "--accuracy", str(tmp_path / "nowhere")]):
        assert main(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "study.json: no such study record" in lines[0], lines
