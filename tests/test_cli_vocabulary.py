"""One CLI vocabulary in the commands table, profile, check and report: `--models` comma
lists, `--set` read by the one parser, `--batch-size` (old `--batch` still works, with a
notice), and every option with help text that states its default."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from profiler.cli import build_parser, command_of
from profiler.commands import profile_model
from profiler.training_commands import DEFAULT_BACKEND, TRAINING_COMMANDS

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("table", "profile", "check", "report")

FACTORIES = '''
import torch.nn as nn


def sized(width=4, bias=True, label=None):
    assert label is None or isinstance(label, str), label
    return nn.Linear(80, width, bias=bias)
'''


def subcommands(parser=None) -> dict:
    parser = parser or build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help_that_states_its_default(command):
    for action in subcommands()[command]._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        assert action.help, f"{command} {action.option_strings}: no help text"
        assert action.required or "default" in action.help, \
            f"{command} {action.option_strings}: help does not state the default"


def test_the_data_tools_are_mounted_only_when_asked_for():
    assert command_of(["--help"]) is None
    assert command_of(["profile", "--model", "x"]) == "profile"
    code = ("import sys; from profiler.cli import build_parser; build_parser({!r}); "
            "print(any(name.split('.')[0] == 'models' for name in sys.modules))")
    for command, zoo_imported in (("profile", "False"), ("table", "False"), ("data", "True"),
                                  ("train", "True"), ("superb", "True")):
        result = subprocess.run([sys.executable, "-c", code.format(command)], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        assert result.stdout.strip() == zoo_imported, result.stderr
    data = subcommands(build_parser("data"))["data"]
    assert "synth" in data.format_help()


def test_the_default_sample_rate_is_the_zoo_s():
    from models.constants import SAMPLE_RATE

    assert profile_model.DEFAULT_SAMPLE_RATE == SAMPLE_RATE


@pytest.mark.parametrize("models", [",", " , ,", ""])
def test_an_empty_models_list_is_a_usage_error(cli, models):
    result = cli("table", "--models", models)
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("profile-encoder")
    assert "expected a comma-separated list of models" in lines[0]
    assert result.stdout == ""


def test_models_lists_gather_across_repeats(cli):
    result = cli("table", "--format", "json", "--models", "vanilla, bq-vanilla",
                 "--models", "conformer-s,vanilla")
    assert result.returncode == 0, result.stderr
    assert [row["model"] for row in json.loads(result.stdout)] == \
        ["vanilla", "bq-vanilla", "conformer-s"]


@pytest.fixture
def factories(tmp_path):
    path = tmp_path / "factories.py"
    path.write_text(FACTORIES)
    return path


def _totals(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["totals"]


def test_set_reads_booleans_in_any_case_and_numbers(cli, factories):
    # bias=FALSE is False (literal_eval gave the truthy string 'FALSE'); width=8 is 8.
    totals = _totals(cli("profile", "--model", f"{factories}:sized", "--input-shape", "2x80",
                         "--set", "width=8", "--set", "bias=FALSE", "--set", "label=none",
                         "--format", "json"))
    assert totals["params"] == 80 * 8
    assert totals["macs"] == 2 * 80 * 8


def test_set_without_equals_is_one_line(cli, factories):
    result = cli("profile", "--model", f"{factories}:sized", "--input-shape", "2x80",
                 "--set", "width")
    assert result.returncode == 2
    assert result.stderr.strip() == ("profile-encoder: error: --set 'width': expected "
                                     "KEY=VALUE, e.g. layers=4")


def test_batch_is_a_deprecated_spelling_of_batch_size(cli, factories):
    args = ["profile", "--model", f"{factories}:sized", "--seconds", "0.005",
            "--sample-rate", "16000", "--set", "width=3", "--format", "json"]
    new = cli(*args, "--batch-size", "5")
    old = cli(*args, "--batch", "5")
    assert _totals(new) == _totals(old)
    assert _totals(new)["macs"] == 5 * 80 * 3
    assert new.stderr == ""
    notice = old.stderr.strip().splitlines()
    assert notice == ["profile-encoder profile: note: --batch is deprecated; use --batch-size"]


def help_lines(parser) -> dict:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: choice.help for choice in action._choices_actions}


def test_each_training_command_says_the_same_line_mounted_or_not():
    # The top-level help lists the trainer's commands without importing it; each one's own
    # parser, mounted when asked for, must say the same.
    listed = help_lines(build_parser())
    for command, line in TRAINING_COMMANDS.items():
        assert help_lines(build_parser(command))[command] == line
        assert listed[command] == f"{line} (see profile-encoder {command} --help)"


def test_the_default_backend_is_the_bundled_trainer():
    from profiler.adapters.bundled import BundledBackend
    from profiler.adapters.registry import get_backend

    assert isinstance(get_backend(DEFAULT_BACKEND), BundledBackend)
    assert isinstance(get_backend(), BundledBackend)


@pytest.mark.parametrize("command", ("profile", "table", "sweep", "measure"))
def test_every_estimate_a_command_accepts_is_described_in_its_help(command, capsys):
    # One declaration of --estimate: each accepted name is listed with the estimator's own
    # description, and a name it does not accept is refused by the parser.
    from profiler.estimator import ESTIMATES, KERNEL_ESTIMATES

    described = {**ESTIMATES, **KERNEL_ESTIMATES}
    action = next(a for a in subcommands()[command]._actions if "--estimate" in a.option_strings)
    if action.choices is not None:
        accepted = list(action.choices)
    else:  # measure's comma list
        accepted = action.type(",".join(described))
    assert accepted, command
    flat_help = " ".join(action.help.split())
    for name in accepted:
        assert f"{name}: {' '.join(described[name].split())}" in flat_help, (command, name)
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--estimate", "no-such-estimate"])
    assert "argument --estimate" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["sweep", "--out", ""],            # was taken as not given: the sweep went to the cwd
    ["table", "--output", " "],
    ["check", "--golden", ""],
    ["study", "--out", "", "--dry-run"],
    ["data", "synth", "--out", ""],
    ["profile", "--model", ""],
])
def test_an_empty_value_is_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser(command_of(argv)).parse_args(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("an empty value"), err
    assert f"argument {argv[-2] if argv[-1].strip() == '' else argv[-3]}" in err[0], err
