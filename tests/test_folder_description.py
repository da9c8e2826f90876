"""A corpus folder's description (models.trainer.data.folder_description): what a study
checks an earlier study's runs against when its corpus was not synthesized."""
import hashlib
import json
import shutil

import pytest

from models.trainer import DataError
from models.trainer.data.folder_description import describe_folder


def _corpus(folder):
    (folder / "ks").mkdir(parents=True)
    root = folder / "ks"     # the corpus's own audio root: not part of the description
    (folder / "ks" / "train.tsv").write_text(f"{root}\na.wav\t16000\nb.wav\t32000\n")
    (folder / "ks" / "test.tsv").write_text(f"{root}\nc.wav\t8000\n")
    (folder / "ks" / "train.ks").write_text("yes\nno\n")
    (folder / "ks" / "a.wav").write_bytes(b"RIFF")           # audio is not digested
    (folder / "notes").mkdir()                               # no manifests: not a task
    return folder


def test_a_folder_is_described_by_its_manifests_and_labels(tmp_path):
    described = describe_folder(_corpus(tmp_path / "corpus"))
    entries = hashlib.sha256(b"a.wav\t16000\nb.wav\t32000\n").hexdigest()[:16]
    files = hashlib.sha256(b"train.ks\nyes\nno\n").hexdigest()[:16]
    assert described == {
        "format": "encoder-profiler-folder/1", "sample_rate": 16000,
        "tasks": {"ks": {"splits": {
            "test": {"utterances": 1, "hours": round(0.5 / 3600, 4),
                     "digest": hashlib.sha256(b"c.wav\t8000\n").hexdigest()[:16]},
            "train": {"utterances": 2, "hours": round(3.0 / 3600, 4), "digest": entries}},
            "files": files}}}


def test_a_moved_folder_keeps_its_description_and_a_changed_one_does_not(tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    before = describe_folder(corpus)
    moved = tmp_path / "moved"
    shutil.copytree(corpus, moved)
    (moved / "ks" / "train.tsv").write_text(
        (moved / "ks" / "train.tsv").read_text().replace(str(corpus), str(moved)))
    (moved / "ks" / "a.wav").write_bytes(b"other audio bytes")
    assert describe_folder(moved) == before
    (moved / "ks" / "train.ks").write_text("yes\nyes\n")
    assert describe_folder(moved)["tasks"]["ks"]["files"] != before["tasks"]["ks"]["files"]
    (moved / "ks" / "test.tsv").write_text(f"{moved / 'ks'}\nc.wav\t8001\n")
    after = describe_folder(moved)["tasks"]["ks"]["splits"]["test"]
    assert after["digest"] != before["tasks"]["ks"]["splits"]["test"]["digest"]
    assert json.loads(json.dumps(after)) == after


def test_a_folder_without_task_folders_is_one_error(tmp_path):
    with pytest.raises(DataError, match="no such corpus folder"):
        describe_folder(tmp_path / "nowhere")
    (tmp_path / "empty" / "notes").mkdir(parents=True)
    with pytest.raises(DataError, match="no task folder with manifests"):
        describe_folder(tmp_path / "empty")
