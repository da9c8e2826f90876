"""KS from Speech Commands v0.01 (``data speechcommands-v0.01``).

Splits as s3prl's recipe runs SUPERB: the ten keywords, ``_unknown_`` (every other word) and
``_silence_``; valid = ``validation_list.txt``; the clips of ``testing_list.txt`` are left
out (s3prl's hash split discards them); test = the separate
``speech_commands_test_set_v0.01``. ``_silence_`` for train and valid: 1 s clips cut from
``_background_noise_`` (s3prl crops the noise files at random each time instead).
"""
from __future__ import annotations

from pathlib import Path

from ...data.corpora import existing_folder, prepare_speech_commands
from ...data.manifest import manifest_path, read_manifest, write_manifest
from ...data.synth_plan import SPLITS
from ...errors import check_seed
from ...fileio import PathLike, staged_folder
from .common import _target


def prepare_speech_commands_v1(root: PathLike, test_root: PathLike, out: PathLike, *,
                               seed: int = 0, overwrite: bool = False,
                               progress: bool = True) -> Path:
    """``OUT/ks`` from ``speech_commands_v0.01`` and ``speech_commands_test_set_v0.01``."""
    check_seed(seed)
    final = _target(out, "ks", overwrite)
    existing_folder(test_root, "Speech Commands test set")
    with staged_folder(final) as folder:
        prepare_speech_commands(root, folder, test_root=test_root, seed=seed,
                                train_on_testing_list=False, progress=progress)
    for split in SPLITS:   # the manifests' root was the staging folder
        manifest = read_manifest(manifest_path(final, split))
        write_manifest(manifest.path, final, zip(manifest.files, manifest.num_samples))
    return final
