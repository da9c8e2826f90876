"""models/trainer/fileio.py: a folder appears complete under its name, or not at all."""
import pytest

from models.trainer.fileio import staged_folder


def test_a_new_folder_appears_whole(tmp_path):
    final = tmp_path / "ks"
    with staged_folder(final) as staging:
        assert not final.exists()
        (staging / "train.tsv").write_text("root\n")
    assert (final / "train.tsv").read_text() == "root\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ks"]


def test_a_failure_leaves_the_old_folder_and_no_staging(tmp_path):
    final = tmp_path / "ks"
    final.mkdir()
    (final / "old.tsv").write_text("old\n")
    with pytest.raises(RuntimeError, match="interrupted"):
        with staged_folder(final) as staging:
            (staging / "half.tsv").write_text("half")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in final.iterdir()) == ["old.tsv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ks"]


def test_a_finished_folder_replaces_the_old_one_entirely(tmp_path):
    final = tmp_path / "ks"
    final.mkdir()
    (final / "old.tsv").write_text("old\n")
    (tmp_path / "ks.partial").mkdir()            # left over from a killed run
    (tmp_path / "ks.partial" / "stale").write_text("x")
    with staged_folder(final) as staging:
        assert list(staging.iterdir()) == []      # starts empty
        (staging / "new.tsv").write_text("new\n")
    assert sorted(p.name for p in final.iterdir()) == ["new.tsv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ks"]
