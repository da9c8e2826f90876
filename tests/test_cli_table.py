"""`profile-encoder table` as a user runs it."""
import csv
import io
import json

import pytest

KEYS = {"model", "layers", "dim", "heads", "precision", "storage_mb", "flop_g", "bop_nonq_g",
        "bop_bq_g", "est_time_s"}


def test_default_table_has_the_ten_rows(cli):
    result = cli("table")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(lines) == 11  # header + ten models
    assert "Conformer-S" in result.stdout and "BQ-Sparseformer-SW-S" in result.stdout
    assert "Convention: bayesian-bits" in result.stdout


def test_json_rows_have_the_contract_keys_and_paper_storage(cli):
    result = cli("table", "--format", "json", "--convention", "paper",
                 "--models", "vanilla,bq-conformer-s")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["model"] for r in rows] == ["vanilla", "bq-conformer-s"]
    assert KEYS <= set(rows[0])
    assert rows[0]["storage_mb"] == pytest.approx(184.42, rel=0.03)   # Table 1, FP16 row
    assert rows[1]["storage_mb"] == pytest.approx(12.88, rel=0.10)
    assert rows[1]["bop_bq_g"] > 0 and rows[0]["bop_bq_g"] == 0
    # the paper's runtime formula, applied to our own BOP columns
    for r in rows:
        assert r["est_time_s"] == pytest.approx(
            r["bop_nonq_g"] / (312 * 1024) + r["bop_bq_g"] / (4992 * 1024), rel=1e-9)


def test_csv_latex_and_compare_paper(cli):
    result = cli("table", "--format", "csv", "--models", "sparseformer-sw-s", "--convention",
                 "paper", "--compare-paper")
    assert result.returncode == 0, result.stderr
    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert float(row["paper_storage_mb"]) == 117.18
    assert abs(float(row["diff_storage_mb"])) < 0.03
    latex = cli("table", "--format", "latex", "--models", "vanilla,bq-vanilla")
    assert r"\toprule" in latex.stdout and r"\bottomrule" in latex.stdout
    assert latex.stdout.count(r"\\") >= 3


def test_other_catalog_and_roofline(cli):
    a100 = json.loads(cli("table", "--format", "json", "--models", "vanilla").stdout)[0]
    h100 = json.loads(cli("table", "--format", "json", "--models", "vanilla",
                          "--catalog", "h100-sxm").stdout)[0]
    assert h100["est_time_s"] < a100["est_time_s"]


@pytest.mark.parametrize("args, message", [
    (["--models", "vanila"], "unknown model 'vanila'"),
    (["--seconds", "-1"], "positive number"),
    (["--seconds", "abc"], "expected a number"),
    (["--catalog", "tpu"], "unknown catalog 'tpu'"),
    (["--format", "xml"], "invalid choice"),
    (["--output", "/no/such/folder/t.md"], "does not exist"),
])
def test_bad_arguments_are_one_line_and_status_2(cli, args, message):
    result = cli("table", *args)
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_malformed_catalog_names_file_and_field(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: X\nkind: gpu\nmemory_bandwidth_gbs: 10\npeaks: {fp32: -1}\n")
    result = cli("table", "--models", "vanilla", "--catalog", bad)
    assert result.returncode == 2
    assert str(bad) in result.stderr and "peaks.fp32" in result.stderr


def test_output_file_is_written_whole_or_not_at_all(cli, tmp_path):
    target = tmp_path / "table.md"
    result = cli("table", "--models", "sparseformer-sw-s", "--output", target)
    assert result.returncode == 0 and "Sparseformer-SW-S" in target.read_text()
    target.write_text("kept")
    failed = cli("table", "--models", "nope", "--output", target)
    assert failed.returncode == 2 and target.read_text() == "kept"


@pytest.mark.parametrize("command", [["table"], ["profile", "--model", "conformer-s"]])
def test_an_output_that_cannot_be_written_stops_before_any_profile(command, tmp_path,
                                                                     monkeypatch, capsys):
    import profiler.analyzer
    import profiler.table
    from profiler.cli import main

    def no_work(*args, **kwargs):
        raise AssertionError("profiled before checking --output")

    monkeypatch.setattr(profiler.table, "build_rows", no_work)
    monkeypatch.setattr(profiler.analyzer, "profile", no_work)
    missing = tmp_path / "no-such-folder" / "out.txt"
    assert main([*command, "--output", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == (f"profile-encoder: error: cannot write {missing}: "
                                               f"folder {missing.parent} does not exist")


def test_inputs_longer_than_the_relative_position_tables(cli):
    # 101 s is 5049 frames, past the 5000-row tables of Conformer-S and Squeezeformer-XS
    # (and past Squeezeformer's half-rate blocks too): storage must not grow with length.
    names = "conformer-s,squeezeformer-xs"
    long = cli("table", "--format", "json", "--models", names, "--seconds", 101)
    assert long.returncode == 0, long.stderr
    short = cli("table", "--format", "json", "--models", names)
    for at_101, at_10 in zip(json.loads(long.stdout), json.loads(short.stdout)):
        assert at_101["storage_mb"] == at_10["storage_mb"]
        assert at_101["flop_g"] > 10 * at_10["flop_g"]  # attention grows faster than length


def test_data_formats_carry_what_they_were_computed_with(cli):
    args = ("--models", "vanilla,bq-vanilla", "--seconds", "4", "--convention", "paper",
            "--estimate", "roofline", "--catalog", "h100-sxm")
    expected = {"seconds": 4.0, "convention": "paper", "estimate": "roofline",
                "catalog": "h100-sxm"}
    rows = json.loads(cli("table", "--format", "json", *args).stdout)
    assert len(rows) == 2
    for row in rows:
        assert KEYS <= set(row)  # the contract keys stay
        assert {k: row[k] for k in expected} == expected
    records = list(csv.DictReader(io.StringIO(cli("table", "--format", "csv", *args).stdout)))
    assert [r["model"] for r in records] == ["vanilla", "bq-vanilla"]
    for record in records:
        assert float(record["seconds"]) == 4.0
        assert {k: record[k] for k in ("convention", "estimate", "catalog")} == \
            {"convention": "paper", "estimate": "roofline", "catalog": "h100-sxm"}


def test_latex_says_it_needs_booktabs(cli):
    latex = cli("table", "--format", "latex", "--models", "vanilla").stdout
    first = latex.splitlines()[0]
    assert first.startswith("%") and r"\usepackage{booktabs}" in first


@pytest.mark.parametrize("command", [
    ["table", "--seconds", "1e9"],
    ["profile", "--model", "vanilla", "--seconds", "1e9"],
    ["measure", "--models", "vanilla", "--seconds", "1,8767066"],
])
def test_a_length_beyond_the_largest_is_one_line_before_any_work(cli, tmp_path, command):
    result = cli(*command, "--output", tmp_path / "out.txt")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "--seconds: expected at most 8767065.3" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_largest_length_is_where_the_zoo_hubert_stops_fitting_pytorch_sizes():
    """8767065.3 s gives 438353264 frames, whose 12 x T x T float32 attention scores take
    just under 2^63 bytes; one frame (320 samples) more and PyTorch refuses the tensor."""
    from profiler.commands.arguments import MAX_SECONDS
    from profiler.errors import ProfileError
    from profiler.table import _profile_meta

    largest = int(round(MAX_SECONDS * 16000))
    assert 12 * 438353264 ** 2 * 4 < 2 ** 63 <= 12 * 438353265 ** 2 * 4
    assert _profile_meta("vanilla", largest, 32, {}).totals["macs"] > 0
    with pytest.raises(ProfileError, match="Storage size calculation overflowed"):
        _profile_meta("vanilla", largest + 1, 32, {})


def test_train_mode_counts_the_forward_bops_the_inference_table_counts(cli):
    """A training step's forward is the inference forward: a W2A2 model's k-bit BOPs are
    in both tables' BOP_BQ (the train view used to keep the binarized ones only: 0)."""
    rows = {}
    for mode in ("inference", "train"):
        result = cli("table", "--format", "json", "--models", "conformer-s", "--seconds", "1",
                     "--set", "weight_bits=2", "--set", "activation_bits=2", "--mode", mode)
        assert result.returncode == 0, result.stderr
        rows[mode] = json.loads(result.stdout)[0]
    assert rows["train"]["precision"] == rows["inference"]["precision"] == "FP32-W2A2"
    assert rows["train"]["bop_bq_g"] > 0
    assert rows["train"]["bop_bq_g"] == pytest.approx(rows["inference"]["bop_bq_g"], rel=1e-12)
    # the train table has no times: its rows name no estimate or catalog
    assert "estimate" not in rows["train"] and "catalog" not in rows["train"]
    assert rows["inference"]["catalog"] == "a100"


@pytest.mark.parametrize("arguments, needle", [
    # the paper's formula on bayesian-bits' BOP columns gave conformer-s 0.0306 s, 34x the
    # 0.000898 s of the paper convention's columns
    (("--estimate", "paper"), "--estimate paper is the paper's formula on the paper "
                              "convention's BOP columns"),
    (("--mode", "train", "--estimate", "roofline"), "no --compare-paper or --estimate"),
    # the paper's rows are its own count of its builds at 10 s: a bayesian-bits count, a
    # 1 s utterance or a W2A2 build beside them differed by up to +3281 %
    (("--compare-paper",), "--compare-paper sets the paper's Table 1 beside"),
    (("--convention", "paper", "--compare-paper", "--set", "weight_bits=2"), "no --set"),
])
def test_an_estimate_the_table_cannot_make_is_refused_before_any_work(cli, tmp_path,
                                                                      arguments, needle):
    out = tmp_path / "t.md"
    result = cli("table", "--models", "conformer-s", "--seconds", "1", *arguments,
                 "--output", out)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and needle in lines[0], lines
    assert not out.exists()


@pytest.mark.parametrize("override, needle", [
    # each was an internal error (a TypeError from comparing the value) before
    ("dropout=x", "dropout must be in [0, 1], got 'x'"),
    ("mask_prob=none", "mask_prob must be in [0, 1], got None"),
    ("logit_temperature=x", "logit_temperature must be positive"),
    ("reduce_index=x", "need 0 <= reduce_index < recover_index <= layers (16), got x"),
    ("name=other", "'name' cannot be overridden"),
])
def test_an_override_of_the_wrong_kind_is_one_line(cli, tmp_path, override, needle):
    out = tmp_path / "t.md"
    result = cli("table", "--models", "squeezeformer-xs", "--set", override, "--output", out)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and needle in lines[0], lines
    assert not out.exists()
