"""The data command line: success, one-line errors with exit status 2, lazy imports."""
import argparse
import subprocess
import sys

import pytest

import models.trainer as trainer
from models.trainer.cli import add_data_parser, main
from models.trainer.data.manifest import read_manifest


def test_synth_then_refuse_to_overwrite(tmp_path, capsys):
    out = tmp_path / "corpus"
    assert main(["synth", "--out", str(out), "--size", "tiny", "--tasks", "ks", "--quiet"]) == 0
    assert len(read_manifest(out / "ks" / "train.tsv")) == 36
    capsys.readouterr()
    assert main(["synth", "--out", str(out), "--size", "tiny", "--tasks", "ks", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--force" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    (["kmeans", "missing.tsv"], "no such file"),
    (["librispeech", "--root", "nowhere", "--out", "x"], "does not exist"),
    (["speechcommands", "--root", "nowhere", "--out", "x"], "does not exist"),
])
def test_bad_input_is_one_line_and_status_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_mounts_under_another_cli(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="profile-encoder")
    add_data_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "kmeans", str(tmp_path / "none.tsv")])
    assert args.func(args) == 2


def test_package_import_is_light_and_exports_resolve():
    code = "import sys, models.trainer, models.trainer.data.synth; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
    assert trainer.synthesize_corpus.__module__ == "models.trainer.data.synth"
    assert issubclass(trainer.DataError, ValueError)
    with pytest.raises(AttributeError):
        trainer.no_such_name


def test_profile_encoder_data_errors_speak_as_profile_encoder(tmp_path, capsys):
    from profiler.cli import main as profile_encoder

    assert profile_encoder(["data", "kmeans", str(tmp_path / "none.tsv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("profile-encoder: error: ") and "no such file" in err
    assert err.count("\n") == 1


def test_synth_tasks_all_and_unknown(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "c"), "--tasks", "nope", "all"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown tasks ['nope']") and err.count("\n") == 1
    assert "qbe" in err and "all" in err and not (tmp_path / "c").exists()


@pytest.mark.parametrize("argv, names", [
    (["synth", "--out", "c", "--tasks", "ks,pr", "sd"], ["ks", "pr", "sd"]),
    (["librispeech", "--root", "r", "--out", "o", "--subsets", "dev-clean, test-clean"],
     ["dev-clean", "test-clean"]),
    (["voxceleb1", "--root", "r", "--out", "o", "--tasks", "asv,sid"], ["asv", "sid"]),
    (["voxceleb1", "--root", "r", "--out", "o", "--tasks", "sid"], ["sid"]),
])
def test_data_lists_take_commas_as_every_other_command_does(argv, names):
    parser = argparse.ArgumentParser(prog="profile-encoder")
    add_data_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", *argv])
    assert (args.subsets if argv[0] == "librispeech" else args.tasks) == names


def test_a_data_list_with_an_unknown_name_is_one_line_and_status_2(capsys):
    parser = argparse.ArgumentParser(prog="profile-encoder")
    add_data_parser(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit) as exit_status:
        parser.parse_args(["data", "voxceleb1", "--root", "r", "--out", "o", "--tasks",
                           "sid,ks"])
    assert exit_status.value.code == 2
    assert "invalid choice ks (choose from sid, asv)" in capsys.readouterr().err.splitlines()[-1]


def test_a_data_output_under_a_file_is_one_line_and_status_2(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["synth", "--out", str(tmp_path / "file" / "corpus"), "--size", "tiny",
                 "--tasks", "ks"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "file is a file, not a folder" in err
    with pytest.raises(SystemExit) as exit_status:
        main(["synth", "--out", str(tmp_path / "c"), "--workers", "0"])
    assert exit_status.value.code == 2 and "positive whole number" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file"]


def test_synth_help_states_the_default_test_splits(capsys):
    """The --size help's test-split sizes are those the default preset plans."""
    import numpy as np

    from models.trainer.data.sentences import KS_CLASSES
    from models.trainer.data.synth_plan import PRESETS
    from models.trainer.superb.tasks import get_task

    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    sizes = PRESETS["default"]
    counts = {"ks": len(KS_CLASSES) * sizes.ks_per_class_test,
              "sid": sizes.sid_speakers * sizes.sid_test_per_speaker, "pr": sizes.pr_test,
              "asv": get_task("asv").sizes["default"]["trials"]}
    for name, split in (("asr", "test"), ("sd", "test"), ("ic", "test"), ("sf", "test"),
                        ("qbe", "queries_test"), ("er", "test")):
        task = get_task(name)
        plans = task.plan(task.sizes["default"], np.random.default_rng(0), 0)
        counts[name] = sum(plan.split == split for plan in plans)
    for name, count in counts.items():
        assert f"{name} {count}" in text, (name, count)
