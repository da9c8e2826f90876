"""The pre-training presets: --tiny, --small (--tiny's recipe, longer) and their conflicts."""
import pytest

from models.trainer.errors import DataError
from models.trainer.pretrain.settings import resolve_settings


def test_small_is_tiny_with_a_longer_budget():
    tiny = resolve_settings("sparseformer-dn-s", "out", tiny=True)
    small = resolve_settings("sparseformer-dn-s", "out", small=True)
    # The budget the masked-prediction curves call for (reports/device/h200.md): 1000 steps,
    # validated every 100.
    assert (small.steps, small.valid_every, small.save_every) == (1000, 100, 100)
    # Everything else is --tiny's recipe, as written in the option's help.
    assert (small.batch_size, small.crop_seconds, small.lr, small.clusters,
            small.unmasked_weight) == (8, 2.0, 3e-4, 50, 1.0)
    assert (small.batch_size, small.lr, small.clusters, small.warmup_steps) == \
        (tiny.batch_size, tiny.lr, tiny.clusters, tiny.warmup_steps)
    # Given values still win over the preset.
    assert resolve_settings("sparseformer-dn-s", "out", small=True, steps=1500).steps == 1500


def test_tiny_and_small_together_are_refused():
    with pytest.raises(DataError, match="--tiny and --small"):
        resolve_settings("sparseformer-dn-s", "out", tiny=True, small=True)


def test_small_on_the_command_line(cli, tmp_path):
    done = cli("train", "--model", "sparseformer-dn-s", "--tiny", "--small",
               "--out", tmp_path / "run")
    err = done.stderr.strip()
    assert done.returncode == 2 and "\n" not in err and "--tiny and --small" in err
    assert not (tmp_path / "run").exists()
