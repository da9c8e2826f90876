"""benchmarks/bench_sparse_attention.py: its JSON of every repeat and its input checks (tiny
lengths, FlexAttention run eagerly instead of compiled)."""
import importlib.util
import json
import pathlib
import warnings

import pytest
from torch.nn.attention.flex_attention import flex_attention

from models import sparse_flex

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_sparse_attention.py"


@pytest.fixture
def bench(monkeypatch):
    def eager(q, k, v, block_mask):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return flex_attention(q, k, v, block_mask=block_mask)

    monkeypatch.setattr(sparse_flex, "compiled_kernel", lambda time, device: eager)
    spec = importlib.util.spec_from_file_location("bench_sparse_attention", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_json_holds_every_repeat_of_every_contender(bench, tmp_path, capsys):
    path = tmp_path / "times.json"
    assert bench.main(["--frames", "40", "70", "--repeats", "2", "--json", str(path)]) == 0
    results = json.loads(path.read_text())
    assert set(results["frames"]) == {"40", "70"}
    for frames in results["frames"].values():
        assert frames["compiled"] is True
        assert set(frames["attention"]) == {"masked", "mask", "dense", "blocked", "flash",
                                            "flex"}
        assert set(frames["layer"]) == {"masked", "dense", "blocked", "flash", "flex"}
        for times in (*frames["attention"].values(), *frames["layer"].values()):
            assert len(times) == 2 and all(t > 0 for t in times)
    # no 8000-frame run, so no headline line
    assert "vs dense at 8000" not in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (["--json", "/nonexistent-folder/times.json"], "does not exist"),
    (["--repeats", "0"], "must be >= 1"),
])
def test_bad_input_is_one_line_and_exit_2(bench, args, message, capsys):
    assert bench.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
