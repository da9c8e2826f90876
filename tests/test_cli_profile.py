"""`profile-encoder profile` as a user runs it: a real subprocess."""
import json

import pytest

MODEL_FILE = '''
import torch.nn as nn


def mlp():
    return nn.Sequential(nn.Linear(80, 256), nn.ReLU(), nn.Linear(256, 10))


def broken():
    raise RuntimeError("cannot build")


def not_a_module():
    return 42


class Raises(nn.Module):
    def forward(self, x):
        raise ValueError("bad forward")


def raises():
    return Raises()
'''


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "my_model.py"
    path.write_text(MODEL_FILE)
    return path


def test_profile_prints_the_per_module_table(cli, model_file):
    result = cli("profile", "--model", f"{model_file}:mlp", "--input-shape", "4x100x80")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Linear" in out and "ReLU" in out and "total" in out
    macs = 400 * (80 * 256 + 256 * 10)
    assert f"MACs {macs:,}" in out


def test_profile_json_has_exact_totals(cli, model_file, tmp_path):
    target = tmp_path / "out.json"
    result = cli("profile", "--model", f"{model_file}:mlp", "--input-shape", "2,80",
                 "--format", "json", "--output", target)
    assert result.returncode == 0, result.stderr
    data = json.loads(target.read_text())
    assert data["totals"]["macs"] == 2 * (80 * 256 + 256 * 10)
    assert data["totals"]["params"] == 80 * 256 + 256 + 256 * 10 + 10
    assert set(data["modules"]) == {"", "0", "1", "2"}


def test_profile_cpu_equals_meta(cli, model_file):
    outs = []
    for device in ("meta", "cpu"):
        result = cli("profile", "--model", f"{model_file}:mlp", "--input-shape", "3x80",
                     "--format", "json", "--device", device)
        assert result.returncode == 0, result.stderr
        outs.append(json.loads(result.stdout)["totals"])
    assert outs[0] == outs[1]


@pytest.mark.parametrize("args, message", [
    (["--model", "{f}:nope", "--seconds", "1"], "has no 'nope'"),
    (["--model", "{f}:broken", "--seconds", "1"], "broken() raised RuntimeError: cannot build"),
    (["--model", "{f}:not_a_module", "--seconds", "1"], "not an nn.Module"),
    (["--model", "{f}:raises", "--input-shape", "2x3"], "Raises raised ValueError: bad forward"),
    (["--model", "{f}:mlp", "--input-shape", "2x81"], "Sequential raised RuntimeError"),
    (["--model", "missing_file.py:mlp", "--seconds", "1"], "does not exist"),
    (["--model", "{f}:mlp", "--seconds", "-2"], "positive number"),
    (["--model", "{f}:mlp", "--seconds", "ten"], "expected a number"),
    (["--model", "{f}:mlp", "--input-shape", "2xa"], "expected integers"),
    (["--model", "{f}:mlp"], "give the input"),
    (["--model", "{f}:mlp", "--input-shape", "2x80", "--output", "/no/such/dir/x.txt"],
     "does not exist"),
])
def test_bad_input_is_one_line_and_status_2(cli, model_file, args, message):
    result = cli("profile", *[a.replace("{f}", str(model_file)) for a in args])
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_no_half_written_output_on_failure(cli, model_file, tmp_path):
    target = tmp_path / "kept.txt"
    target.write_text("previous")
    result = cli("profile", "--model", f"{model_file}:raises", "--input-shape", "2x3",
                 "--output", target)
    assert result.returncode == 2
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("spec", ["{f}", "my_model.py"])
def test_a_model_file_without_factory_says_the_factory_is_missing(cli, model_file, spec):
    # not "unknown model": a path is never a zoo name
    result = cli("profile", "--model", spec.replace("{f}", str(model_file)),
                 "--input-shape", "2x80", cwd=model_file.parent)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "factory is missing" in lines[0], result.stderr
    assert "my_model.py:FACTORY" in lines[0]


SMALL_MODEL = '''
import torch.nn as nn


def small():
    return nn.Sequential(nn.Linear(28, 10), nn.ReLU(), nn.Linear(10, 3))
'''


def test_small_counts_print_as_integers_and_the_csv_root_row_has_a_name(cli, tmp_path):
    import csv
    import io

    path = tmp_path / "small.py"
    path.write_text(SMALL_MODEL)
    text = cli("profile", "--model", f"{path}:small", "--input-shape", "4x28")
    assert text.returncode == 0, text.stderr
    rows = {line.split()[0]: line.split() for line in text.stdout.splitlines()
            if line[:1] in ("0", "2")}
    assert rows["0"][2] == "290" and rows["2"][2] == "33"   # 28*10+10, 10*3+3: not 2.9e+02
    assert "e+0" not in text.stdout
    table = cli("profile", "--model", f"{path}:small", "--input-shape", "4x28", "--format", "csv")
    assert table.returncode == 0, table.stderr
    records = list(csv.DictReader(io.StringIO(table.stdout)))
    assert records[0]["module"] == "(model)" and records[0]["depth"] == "0"
    assert all(r["module"] for r in records)
