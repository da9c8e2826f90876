"""models/trainer/fileio.py: a folder appears complete under its name, or not at all."""
import pytest

from models.trainer.fileio import staged_folder


def test_an_output_folder_is_checked_before_it_is_made(tmp_path):
    from models.trainer.errors import DataError
    from models.trainer.fileio import check_output_folder, make_output_folder

    (tmp_path / "file").write_text("")
    assert check_output_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()             # checked, not made
    for path in (tmp_path / "file", tmp_path / "file" / "below" / "deeper"):
        for call in (check_output_folder, make_output_folder):
            with pytest.raises(DataError, match=f"cannot make folder {path}: "
                                                f"{tmp_path / 'file'} is a file, not a folder"):
                call(path)
    assert make_output_folder(tmp_path / "new" / "deeper").is_dir()


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


def test_a_json_path_that_is_a_folder_is_one_data_error_line(tmp_path):
    # --deepspeed FOLDER was an internal IsADirectoryError
    from models.trainer.errors import DataError
    from models.trainer.fileio import read_json

    with pytest.raises(DataError, match=f"^{tmp_path}: a folder, not a DeepSpeed config$"):
        read_json(tmp_path, "DeepSpeed config")
    with pytest.raises(DataError, match="no such DeepSpeed config"):
        read_json(tmp_path / "missing.json", "DeepSpeed config")
