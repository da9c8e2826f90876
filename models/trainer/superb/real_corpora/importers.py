"""The real-corpus importers, declared once: the ``data`` command each one is, the task
folders it writes, what it reads, and the defaults of its own options. The command line
builds its commands from :data:`REAL_CORPORA`, and each loader checks its ``tasks`` against
the same entry. Torch- and numpy-free, so ``data --help`` stays cheap: a loader is imported
only when its command runs."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

# VoxCeleb1 has no validation list (s3prl scores checkpoints on test): ASV's valid split
# holds out training speakers, with trials among their utterances, half same-speaker.
ASV_VALID_SPEAKERS = 20
ASV_VALID_TRIALS = 2000
ASV_MIN_VALID_TRIALS = 2      # one same-speaker and one different-speaker trial
IEMOCAP_SESSIONS = 5
IEMOCAP_TEST_SESSION = 1      # SUPERB reports the mean over the five folds


@dataclass(frozen=True)
class RealCorpus:
    """One ``data`` command that writes SUPERB task folders from a real corpus."""

    tasks: tuple          # the task folders it can write, in order
    corpus: str           # what it reads, for help
    root: str             # what --root is
    loader: str           # the loader's name in :mod:`models.trainer.superb.real_corpora`
    options: tuple = ()   # the loader's keywords the command's own options set

    def write(self, root, out, **options) -> dict[str, Path]:
        """Run the loader: task -> the folder written."""
        from .. import real_corpora

        written: Union[Path, dict] = getattr(real_corpora, self.loader)(root=root, out=out,
                                                                        **options)
        return written if isinstance(written, dict) else {self.tasks[0]: written}


REAL_CORPORA = {
    "librispeech-tasks": RealCorpus(
        ("asr", "pr"), "LibriSpeech for ASR and PR (train-clean-100, dev-clean, test-clean)",
        "the LibriSpeech folder holding train-clean-100, dev-clean and test-clean",
        "prepare_librispeech_tasks", ("tasks", "lexicon")),
    "speechcommands-v0.01": RealCorpus(
        ("ks",), "Speech Commands v0.01 as SUPERB's KS uses it",
        "the unpacked speech_commands_v0.01 folder",
        "prepare_speech_commands_v1", ("test_root", "seed")),
    "voxceleb1": RealCorpus(
        ("sid", "asv"), "VoxCeleb1 for SID (iden_split.txt) and ASV (trial list)",
        "the VoxCeleb1 folder: dev/wav and test/wav (or wav) with id1xxxx folders",
        "prepare_voxceleb1",
        ("tasks", "iden_split", "trials", "valid_speakers", "valid_trials", "seed")),
    "fluentcommands": RealCorpus(
        ("ic",), "Fluent Speech Commands for IC",
        "the fluent_speech_commands_dataset folder (data/*_data.csv, wavs)",
        "prepare_fluent_speech_commands"),
    "snips": RealCorpus(
        ("sf",), "Audio SNIPS for SF, as s3prl's snips_prepare_data.sh leaves it",
        "the SNIPS folder (all.iob.snips.txt; train, valid, test with 16 kHz .wav)",
        "prepare_snips"),
    "librimix": RealCorpus(
        ("sd",), "Libri2Mix for SD, in s3prl's kaldi-style data folders",
        "the folder holding the data folders train, dev and test (wav.scp, rttm)",
        "prepare_librimix"),
    "quesst14": RealCorpus(
        ("qbe",), "QUESST 2014 for QbE (the English queries and documents)",
        "the quesst14Database folder, audio resampled to 16 kHz", "prepare_quesst14"),
    "iemocap": RealCorpus(
        ("er",), "IEMOCAP for ER (neu, hap+exc, ang, sad), one session as test",
        "the IEMOCAP folder (Session1 ... Session5)", "prepare_iemocap", ("fold", "seed")),
}


def corpus_tasks(command: str) -> tuple:
    """The task folders ``command``'s loader can write."""
    return REAL_CORPORA[command].tasks
