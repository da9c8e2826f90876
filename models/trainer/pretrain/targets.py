"""HuBERT pre-training targets: k-means units of frame features, one per encoder frame.

Iteration 1 clusters 39-d MFCC (:func:`models.trainer.data.features.mfcc_features`);
iteration 2 clusters a hidden layer of the model trained on iteration-1 targets
(:func:`hidden_layer_features`; HuBERT Base used layer 6 and 500 units). Either way a
*features function* maps a 16 kHz waveform of S samples to a (``encoder_frames(S)``, D)
array, so the labels line up one to one with the 50 Hz encoder output.

Phone targets (``train --targets phones``) are not k-means units: :func:`build_phone_targets`
numbers the corpus's frame phone labels (:mod:`models.trainer.data.phones`) in the
order of ``dict.phones.txt`` and writes them as the same ``.km`` files, so training reads
every kind of target alike. They are supervised labels, a deviation from HuBERT.

Label files follow fairseq: ``<split>.km`` next to ``<split>.tsv``, one line of
space-separated integers per utterance, and ``dict.km.txt`` listing the units. The
k-means model is saved as an ``.npz`` of its centers; loading it needs no pickle, and
:class:`.kmeans.KMeansCenters` assigns units exactly as used for the label files.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np
import torch

from ...hubert import HuBERT
from ...transformer import TransformerEncoder
from ..data import PRETRAIN_SPLITS
from ..data.audio import read_audio
from ..data.features import encoder_frames, mfcc_features
from ..data.manifest import (
    PHONE_LABELS,
    UNIT_LABELS,
    Manifest,
    dictionary_path,
    labels_path,
    manifest_path,
    read_dictionary,
    read_manifest,
    write_dictionary,
)
from ..data.phones import has_phone_labels, read_phone_lines
from ..errors import DataError
from ..fileio import PathLike, atomic_write, write_json, write_text_atomic
from .checkpoint import TrainedRun
from .kmeans import as_centers, fit_kmeans, save_kmeans
from .settings import PHONE_TARGETS

FeaturesFn = Callable[[np.ndarray], Union[np.ndarray, torch.Tensor]]

# A targets folder's record of what made its labels; written last, so it marks a whole folder.
TARGETS_FILE = "targets.json"
# The k-means fit and the labels of its manifest read the same features. Up to this many
# bytes they are kept from the fit's pass for the labels, so an iteration-2 teacher runs
# once per training utterance instead of twice (the paper preset's corpus: about 0.2 GB
# of hidden states); a larger corpus is read twice.
FEATURE_CACHE_BYTES = 2 << 30


def _frames_of(features_fn: FeaturesFn, waveform: np.ndarray) -> np.ndarray:
    output = features_fn(waveform)
    if torch.is_tensor(output):
        output = output.detach().cpu().float().numpy()
    output = np.asarray(output)
    expected = encoder_frames(waveform.size)
    if output.ndim != 2 or output.shape[0] != expected:
        raise ValueError(f"features function returned shape {output.shape} for {waveform.size} "
                         f"samples; expected ({expected}, dim), one row per encoder frame")
    return output


def _utterances(manifest: Manifest, progress: bool, desc: str) -> Iterator[tuple[int, np.ndarray]]:
    from tqdm import tqdm

    for index in tqdm(range(len(manifest)), desc=desc, unit="utt", disable=not progress):
        waveform = read_audio(manifest.audio_path(index))
        manifest.check_length(index, waveform.size)
        yield index, waveform


def manifest_features(manifest: Union[Manifest, PathLike], features_fn: FeaturesFn = mfcc_features,
                      *, progress: bool = False) -> Iterator[np.ndarray]:
    """Features of every utterance of a manifest, in order (for :func:`fit_kmeans`)."""
    manifest = manifest if isinstance(manifest, Manifest) else read_manifest(manifest)
    for _, waveform in _utterances(manifest, progress, f"features {manifest.path.name}"):
        yield _frames_of(features_fn, waveform)


class KeptFeatures:
    """Passes features through (:meth:`through`), keeping them while their bytes stay
    within ``limit``; ``kept`` is the whole sequence once it has passed, else None."""

    def __init__(self, limit: Optional[int] = None) -> None:
        self.limit = FEATURE_CACHE_BYTES if limit is None else limit
        self.size = 0
        self._arrays: Optional[list] = []
        self.kept: Optional[list] = None

    def through(self, features: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for array in features:
            if self._arrays is not None:
                self.size += array.nbytes
                if self.size > self.limit:
                    self._arrays = None          # too big: the labels will read again
                else:
                    self._arrays.append(array)
            yield array
        self.kept = self._arrays


def label_corpus(manifest: Union[Manifest, PathLike], features_fn: FeaturesFn, kmeans,
                 out_path: Optional[PathLike] = None, *, progress: bool = True,
                 features: Optional[Sequence[np.ndarray]] = None) -> Path:
    """Write k-means units for every utterance of ``manifest`` (fairseq ``.km`` format).

    ``out_path`` defaults to the manifest's ``.km`` sibling (``train.tsv`` -> ``train.km``).
    Line ``i`` holds ``encoder_frames(num_samples_i)`` space-separated integers. The file is
    written under a temporary name and renamed when complete. ``features``: the
    utterances' features already computed by ``features_fn`` (in manifest order).
    """
    manifest = manifest if isinstance(manifest, Manifest) else read_manifest(manifest)
    centers = as_centers(kmeans)
    out_path = Path(out_path) if out_path is not None else manifest.label_path(UNIT_LABELS)
    if features is None:
        features = manifest_features(manifest, features_fn, progress=progress)
    elif len(features) != len(manifest):
        raise ValueError(f"{len(features)} feature arrays for {len(manifest)} utterances")
    with atomic_write(out_path, "w") as handle:
        for array in features:
            units = centers.predict(array)
            handle.write(" ".join(map(str, units.tolist())) + "\n")
    return out_path


def hidden_layer_features(model: torch.nn.Module, layer: int, *,
                          device: Union[str, torch.device, None] = None) -> FeaturesFn:
    """A features function returning ``model(waveform).hidden_states[layer]`` (T, D).

    The model is called on a batch of one waveform, in eval mode and without gradients
    (its training flag is restored afterwards). Its frame count may exceed the
    wav2vec2-CNN count by a few frames (then the extra frames are dropped) or fall short
    by at most two (then the last frame is repeated); anything else is an error.
    """
    if device is None:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")

    def features(waveform: np.ndarray) -> torch.Tensor:
        batch = torch.as_tensor(np.asarray(waveform, dtype=np.float32))[None].to(device)
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode(), _stop_at_hidden_state(model, layer) as reached:
                output = model(batch)
        finally:
            model.train(was_training)
        state = reached.state
        if state is None:
            states = getattr(output, "hidden_states", None)
            if states is None:
                raise ValueError("the model's output has no hidden_states")
            if not -len(states) <= layer < len(states):
                raise ValueError(f"layer {layer} out of range: the model returns "
                                 f"{len(states)} hidden states")
            state = states[layer]
        return _match_frames(state[0].float().cpu(), encoder_frames(batch.shape[-1]))

    return features


class _HiddenStateReached(Exception):
    """Raised by a hook to end a forward pass once the state it waits for exists."""


class _ReachedState:
    state: Optional[torch.Tensor] = None


@contextlib.contextmanager
def _stop_at_hidden_state(model: torch.nn.Module, layer: int) -> Iterator[_ReachedState]:
    """Ends ``model``'s forward as soon as hidden state ``layer`` is computed (the layers
    after it would be thrown away: at half depth that is about a third of a zoo model's
    MACs), keeping the state in the yielded record. Only for zoo HuBERT models whose
    encoder keeps every layer at the input's rate (hidden state k is layer k's output);
    any other model runs whole and the record stays empty."""
    reached = _ReachedState()
    encoder = getattr(model, "encoder", None)
    if not (isinstance(model, HuBERT) and isinstance(encoder, TransformerEncoder)
            and 0 <= layer < len(encoder.layers)):
        yield reached
        return

    def keep(state: torch.Tensor) -> None:
        reached.state = state
        raise _HiddenStateReached

    if layer == 0:   # the encoder's input, after the positional convolution
        handle = encoder.register_forward_pre_hook(lambda module, args: keep(args[0]))
    else:
        handle = encoder.layers[layer - 1].register_forward_hook(
            lambda module, args, output: keep(output))
    try:
        yield reached
    except _HiddenStateReached:
        pass
    finally:
        handle.remove()


def _match_frames(hidden: torch.Tensor, expected: int, tolerance: int = 2) -> torch.Tensor:
    count = hidden.shape[0]
    if count >= expected:
        return hidden[:expected]
    if expected - count > tolerance or count == 0:
        raise ValueError(f"model returned {count} frames where the encoder frame count is "
                         f"{expected}")
    return torch.cat([hidden, hidden[-1:].expand(expected - count, -1)])


def build_targets(manifests: Sequence[PathLike], n_clusters: int, *,
                  features_fn: FeaturesFn = mfcc_features, seed: int = 0,
                  kmeans_path: Optional[PathLike] = None, max_frames: int = 250_000,
                  max_iter: int = 100, out_folder: Optional[PathLike] = None,
                  progress: bool = True) -> dict:
    """Fit k-means on the first manifest and label all of them; write the unit dictionary.

    Writes ``<split>.km`` for each manifest, ``dict.km.txt`` and the centers
    (``kmeans_path``, by default ``km.npz``): into ``out_folder`` if given, else next to
    the manifests (the dictionary and centers next to the first). Returns the paths written.
    """
    if not manifests:
        raise DataError("no manifests given")
    parsed = [read_manifest(path) for path in manifests]
    fit_on = parsed[0]
    # Visit a share of the frames proportional to max_frames, so a large corpus never
    # has to sit in memory as a whole before subsampling.
    total = sum(encoder_frames(n) for n in fit_on.num_samples)
    fraction = min(1.0, 1.5 * max_frames / max(total, 1))
    kept = KeptFeatures()
    kmeans = fit_kmeans(kept.through(manifest_features(fit_on, features_fn, progress=progress)),
                        n_clusters, seed, max_frames=max_frames, sample_fraction=fraction,
                        max_iter=max_iter)
    folder = Path(out_folder) if out_folder is not None else fit_on.path.parent
    written = {"kmeans": save_kmeans(kmeans, kmeans_path or folder / "km.npz"),
               "dictionary": write_dictionary(dictionary_path(folder, UNIT_LABELS),
                                              [str(i) for i in range(n_clusters)]),
               "labels": []}
    for manifest in parsed:
        labels = (None if out_folder is None
                  else labels_path(folder, manifest.path.stem, UNIT_LABELS))
        written["labels"].append(label_corpus(
            manifest, features_fn, kmeans, labels, progress=progress,
            features=kept.kept if manifest is fit_on else None))
    return written


def build_run_targets(pretrain_folder: Path, out_folder: Path, *, iteration: int, clusters: int,
                      seed: int, max_frames: int, targets_from: Optional[TrainedRun] = None,
                      label_layer: Optional[int] = None, progress: bool = True) -> dict:
    """A training run's units for the ``train`` and ``valid`` manifests of
    ``pretrain_folder``, written to ``out_folder`` so the corpus itself never changes.

    Iteration 1 clusters MFCC; iteration 2 clusters hidden state ``label_layer`` (default:
    half the depth) of the run ``targets_from``.
    ``out_folder/targets.json`` records what
    was built; when it already says the same, nothing is rebuilt. Returns that record.
    """
    if iteration == 1:
        features_fn, source = mfcc_features, {"features": "mfcc-39 (Kaldi MFCC + deltas)"}
    else:
        layer = check_label_layer(targets_from, label_layer)
        features_fn = hidden_layer_features(targets_from.model, layer)
        source = {"features": f"hidden layer {layer}",
                  "run": str(Path(targets_from.run_dir).resolve()),
                  "step": targets_from.step, "model": targets_from.name}
    info = {"iteration": iteration, "clusters": clusters, "seed": seed,
            "max_frames": max_frames, **source}
    done = Path(out_folder) / TARGETS_FILE
    if done.is_file():
        try:
            existing = json.loads(done.read_text(encoding="utf-8"))
        except ValueError:
            existing = None
        if existing == info:
            return info
    build_targets([manifest_path(pretrain_folder, split) for split in PRETRAIN_SPLITS],
                  clusters, features_fn=features_fn, seed=seed, max_frames=max_frames,
                  out_folder=out_folder, progress=progress)
    write_json(done, info)
    return info


def check_label_layer(run: TrainedRun, layer: Optional[int]) -> int:
    """The hidden state of ``run`` iteration 2 clusters (``None``: half the depth, at least
    1); :class:`DataError` when the run's model has no such state."""
    layers = int(run.config["config"]["layers"])
    layer = layer if layer is not None else max(1, layers // 2)
    if not 0 <= layer <= layers:
        raise DataError(f"label layer {layer} out of range: {run.name} in {run.run_dir} has "
                        f"{layers} layers (0 = encoder input, 1..{layers} its layers)")
    return layer


def require_phone_labels(pretrain_folder: Path) -> None:
    """:class:`DataError` unless the corpus has frame phone labels for train and valid."""
    if not has_phone_labels(pretrain_folder):
        raise DataError(f"{pretrain_folder}: the corpus has no phoneme events (train.phones, "
                        f"valid.phones, {dictionary_path('', PHONE_LABELS)}); synthesize it "
                        f"with 'data synth --phones' for --targets phones")


def build_phone_targets(pretrain_folder: Path, out_folder: Path) -> dict:
    """``--targets phones``: the corpus's frame phone labels as numbered units (``.km``
    files, ``dict.km.txt``) in ``out_folder``; returns the record written to
    ``targets.json`` (its ``clusters`` is the phone inventory's size)."""
    require_phone_labels(pretrain_folder)
    dictionary = dictionary_path(pretrain_folder, PHONE_LABELS)
    phones = read_dictionary(dictionary)
    index = {phone: i for i, phone in enumerate(phones)}
    out_folder = Path(out_folder)
    for split in PRETRAIN_SPLITS:
        manifest = read_manifest(manifest_path(pretrain_folder, split))
        path = labels_path(pretrain_folder, split, PHONE_LABELS)
        lines = read_phone_lines(path, len(manifest))
        unknown = sorted({p for line in lines for p in line} - set(index))
        if unknown:
            raise DataError(f"{path}: phones {unknown} are not in {dictionary.name}")
        write_text_atomic(labels_path(out_folder, split, UNIT_LABELS), "".join(
            " ".join(str(index[p]) for p in line) + "\n" for line in lines))
    write_dictionary(dictionary_path(out_folder, UNIT_LABELS), [str(i) for i in range(len(phones))])
    info = {"targets": PHONE_TARGETS, "features": "frame phone labels from espeak-ng's phoneme "
            "events (supervised)", "clusters": len(phones), "units": phones,
            "corpus": str(Path(pretrain_folder).resolve())}
    write_json(out_folder / TARGETS_FILE, info)
    return info
