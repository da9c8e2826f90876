"""The committed golden op counts: checked against closed forms, and `check` detects drift."""
import json
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "reports" / "golden" / "op_counts.json"
FASTCONV = [(64, 10, 5), (128, 3, 2), (128, 1, 1), (128, 3, 2), (128, 1, 1), (256, 3, 2),
            (256, 1, 1), (256, 3, 2), (256, 1, 1), (512, 2, 2), (512, 1, 1), (512, 2, 2),
            (512, 1, 1)]


def conv_stack_macs(layers, samples=160_000, channels=1):
    macs, length = 0, samples
    for out_channels, kernel, stride in layers:
        length = (length - kernel) // stride + 1
        macs += length * out_channels * channels * kernel
        channels = out_channels
    return macs, length


@pytest.fixture(scope="module")
def golden():
    return json.loads(GOLDEN.read_text())


def test_vanilla_golden_counts_match_closed_forms(golden):
    vanilla = golden["models"]["vanilla"]
    modules = vanilla["modules"]
    macs, frames = conv_stack_macs(FASTCONV)
    assert frames == 499
    assert modules["feature_extractor"]["macs"] == macs
    assert modules["feature_projection"]["macs"] == 499 * 512 * 768
    # kernel 128, 16 groups, padding 64: 500 output positions (the last one is dropped)
    assert modules["positional_conv"]["macs"] == 500 * 768 * (768 // 16) * 128
    d, f, t, layers = 768, 3072, 499, 12
    per_layer = 4 * d * d * t + 2 * d * f * t + 2 * t * t * d
    assert modules["encoder"]["macs"] == layers * per_layer
    # HuBERT-Base with the FastConv front end: ~92.3 M parameters (reports/paper_notes.md)
    assert vanilla["totals"]["params"] == pytest.approx(92.3e6, rel=0.01)
    assert vanilla["totals"]["bop_nonq"] == vanilla["totals"]["macs"] * 32 * 32


def test_every_model_has_consistent_totals(golden):
    for name, entry in golden["models"].items():
        t = entry["totals"]
        assert t["macs"] == t["macs_nonq"] + t["macs_bq"], name
        assert t["flops"] == 2 * t["macs_nonq"] + t["elementwise_flops"], name
        assert t["bop_bq"] == t["macs_bq"], name  # 1 x 1 bit
        assert sum(m["params"] for m in entry["modules"].values()) == t["params"], name
        if name.startswith("bq-"):
            assert t["macs_bq"] > 0 and t["bop_nonq"] < t["macs_nonq"] * 1025
        if "sparseformer" in name:
            assert t["effective_macs"] < t["macs"], name


def test_sparseformer_dense_and_effective_attention(golden):
    t = golden["models"]["sparseformer-dn-s"]["totals"]
    frames, dim, layers, block, summary = 499, 256, 16, 32, 8
    dense = layers * 2 * frames * frames * dim
    # Child et al. fixed pattern, bidirectional: each query sees its own block and the
    # last `summary` columns of every other block.
    blocks = [min(block, frames - start) for start in range(0, frames, block)]
    summaries = [max(0, b - (block - summary)) for b in blocks]  # the last positions of a block
    pairs = sum(b * (b + sum(summaries) - s) for b, s in zip(blocks, summaries))
    assert t["macs"] - t["effective_macs"] == dense - layers * 2 * pairs * dim


def test_check_passes_on_the_committed_counts(cli):
    result = cli("check", "--models", "sparseformer-sw-s")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "match" in result.stdout


def test_check_reports_drift_and_exits_1(cli, tmp_path, golden):
    tampered = json.loads(json.dumps(golden))
    tampered["models"]["sparseformer-sw-s"]["totals"]["macs"] += 1000
    tampered["models"]["sparseformer-sw-s"]["modules"]["encoder"]["flops"] -= 7
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(tampered))
    result = cli("check", "--golden", path, "--models", "sparseformer-sw-s")
    assert result.returncode == 1
    assert "sparseformer-sw-s macs:" in result.stdout
    assert "sparseformer-sw-s.encoder flops:" in result.stdout
    lenient = cli("check", "--golden", path, "--models", "sparseformer-sw-s", "--tolerance", "1%")
    assert lenient.returncode == 0


def test_write_with_models_rewrites_only_their_entries(cli, tmp_path, golden):
    """The committed file's other nine models stay as they were; sparseformer-sw-s, tampered
    with first, gets its count back; an unwritable path is refused before counting."""
    tampered = json.loads(json.dumps(golden))
    tampered["models"]["sparseformer-sw-s"]["totals"]["macs"] += 1000
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(tampered))
    result = cli("check", "--golden", path, "--models", "sparseformer-sw-s", "--write")
    assert result.returncode == 0, result.stderr
    written = json.loads(path.read_text())
    assert list(written["models"]) == list(golden["models"])
    assert written["models"] == golden["models"]
    refused = cli("check", "--golden", tmp_path / "nowhere" / "g.json", "--models",
                  "sparseformer-sw-s", "--write")
    assert refused.returncode == 2 and "nowhere" in refused.stderr


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"), ("{not json", "not valid JSON"), ("[]", "lacks 'models'"),
    ("folder", "is a folder, not a JSON file"),   # said "does not exist"
    # an entry without its counts is a malformed file, not every count drifted to None
    ('{"seconds": 10, "sample_rate": 16000, "models": {"vanilla": {}}}',
     "models.vanilla is {}, expected 'totals' and 'modules'"),
])
def test_check_bad_golden_file_is_status_2(cli, tmp_path, content, message):
    path = tmp_path / "golden.json"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    result = cli("check", "--golden", path)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("field, value, message", [
    (("totals", "macs"), "52822926720", "models.vanilla.totals.macs is '52822926720'"),
    (("modules", "encoder", "flops"), None, "models.vanilla.modules.encoder.flops is None"),
])
def test_check_golden_counts_of_the_wrong_type_name_the_field(cli, tmp_path, golden, field,
                                                              value, message):
    # exit 1 means drift: a malformed file is bad input (2), said before anything is counted
    tampered = json.loads(json.dumps(golden))
    block = tampered["models"]["vanilla"]
    for key in field[:-1]:
        block = block[key]
    block[field[-1]] = value
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(tampered))
    result = cli("check", "--golden", path, "--models", "vanilla")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("profile-encoder: error:")
    assert str(path) in lines[0] and message in lines[0]
