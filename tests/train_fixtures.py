"""Shared helpers of the tests/test_train_*.py files (tiny models, tiny corpora)."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

# A sparseformer-dn-s cut down to one narrow layer: a training step takes ~0.1 s.
TINY_MODEL = "sparseformer-dn-s"
TINY_OVERRIDES = {"layers": 1, "dim": 64, "heads": 2, "sparse_block": 8, "sparse_summary": 2}
TINY_OVERRIDE_ARGS = [arg for key, value in TINY_OVERRIDES.items()
                      for arg in ("--set", f"{key}={value}")]


def tiny_corpus(root: Path, tasks=("pretrain",)) -> Path:
    """The 'tiny' synthesis preset (a few seconds), made once per folder."""
    from models.trainer.data.synth import synthesize_corpus

    if not (root / "corpus.json").is_file():
        synthesize_corpus(root, seed=0, sizes="tiny", tasks=list(tasks), progress=False)
    return root


def train_settings(out: Path, data: Path, model: str = TINY_MODEL, **changes):
    from models.trainer.pretrain.settings import resolve_settings

    values = dict(data=str(data), overrides=dict(TINY_OVERRIDES), steps=6, batch_size=2,
                  crop_seconds=0.5, clusters=8, kmeans_max_frames=4000, warmup_steps=2,
                  save_every=2, log_every=1, valid_every=3, progress=False)
    values.update(changes)
    return resolve_settings(model, out, **values)


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000, channels: int = 1,
              width: int = 2) -> int:
    """A PCM WAV with any rate/channels (the project's writer only makes valid ones)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(pcm.tobytes())
    return pcm.size // channels


def write_float_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> int:
    """An IEEE-float (format 3) WAV, which can hold NaN."""
    data = samples.astype("<f4").tobytes()
    header = (b"RIFF" + (36 + len(data)).to_bytes(4, "little") + b"WAVE" + b"fmt "
              + (16).to_bytes(4, "little") + (3).to_bytes(2, "little") + (1).to_bytes(2, "little")
              + rate.to_bytes(4, "little") + (rate * 4).to_bytes(4, "little")
              + (4).to_bytes(2, "little") + (32).to_bytes(2, "little")
              + b"data" + len(data).to_bytes(4, "little"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + data)
    return samples.size


def bad_pretrain_corpus(root: Path, kind: str) -> Path:
    """A pre-training corpus with one bad file: 'rate' (8 kHz), 'stereo' or 'nan'."""
    rng = np.random.default_rng(0)
    folder = root / "pretrain"
    entries = []
    for index in range(3):
        path = folder / f"utt{index}.wav"
        samples = 0.1 * rng.standard_normal(16000).astype(np.float32)
        if index == 1 and kind == "rate":
            count = write_wav(path, samples[:8000], rate=8000)
        elif index == 1 and kind == "stereo":
            count = write_wav(path, np.repeat(samples, 2), channels=2)
        elif index == 1 and kind == "nan":
            samples[100] = np.nan
            count = write_float_wav(path, samples)
        else:
            count = write_wav(path, samples)
        entries.append(f"{path.name}\t{count}")
    for split in ("train", "valid"):
        (folder / f"{split}.tsv").write_text(str(folder) + "\n" + "\n".join(entries) + "\n")
    return root
