"""k-means for HuBERT's targets: fitting scikit-learn's ``MiniBatchKMeans`` on frames with
fairseq's settings, nearest-center labelling without scikit-learn, and the centers saved
and loaded as an ``.npz``."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import torch

from ..errors import DataError
from ..fileio import PathLike, write_bytes_atomic

_PREDICT_CHUNK = 8192   # frames per distance computation, to bound memory
class KMeansCenters:
    """Nearest-center assignment for a fitted k-means model (no scikit-learn needed)."""

    def __init__(self, centers) -> None:
        centers = np.asarray(centers)
        if centers.ndim != 2 or centers.shape[0] < 1 or not np.all(np.isfinite(centers)):
            raise DataError(f"k-means centers must be a finite 2-D array, got shape "
                            f"{centers.shape}")
        self.cluster_centers_ = centers.astype(np.float32)
        self._center_norms = (self.cluster_centers_.astype(np.float64) ** 2).sum(axis=1)

    @property
    def n_clusters(self) -> int:
        return self.cluster_centers_.shape[0]

    @property
    def feature_dim(self) -> int:
        return self.cluster_centers_.shape[1]

    def predict(self, features) -> np.ndarray:
        """Index of the nearest center (squared Euclidean distance) for each row."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.feature_dim:
            raise ValueError(f"expected features of shape (frames, {self.feature_dim}), "
                             f"got {x.shape}")
        centers = self.cluster_centers_.astype(np.float64)
        labels = np.empty(x.shape[0], dtype=np.int64)
        for start in range(0, x.shape[0], _PREDICT_CHUNK):
            block = x[start:start + _PREDICT_CHUNK]
            # |x|^2 is the same for every center, so it does not change the argmin.
            distances = self._center_norms[None, :] - 2.0 * block @ centers.T
            labels[start:start + block.shape[0]] = distances.argmin(axis=1)
        return labels


def as_centers(kmeans) -> KMeansCenters:
    """A :class:`KMeansCenters` from one, or from any model with ``cluster_centers_``."""
    if isinstance(kmeans, KMeansCenters):
        return kmeans
    if not hasattr(kmeans, "cluster_centers_"):
        raise ValueError("expected a fitted k-means model with cluster_centers_")
    return KMeansCenters(kmeans.cluster_centers_)


def fit_kmeans(features: Iterable, n_clusters: int, seed: int = 0, *,
               max_frames: int = 250_000, sample_fraction: float = 1.0,
               batch_size: int = 10_000, max_iter: int = 100, n_init: int = 3,
               threads: Optional[int] = 1):
    """Fit scikit-learn's ``MiniBatchKMeans`` on frames from ``features``.

    ``features`` yields (frames, dim) arrays (one per utterance). Each frame is kept with
    probability ``sample_fraction``, then at most ``max_frames`` frames are drawn, both
    with a generator seeded by ``seed``; the fit uses fairseq's HuBERT settings (k-means++
    init, no early stopping on tolerance, no reassignment) and ``random_state=seed``, so
    the same inputs and seed give the same centers. ``threads`` caps scikit-learn's
    OpenMP/BLAS threads (``None``: no cap); the default of 1 is deliberate, since on a
    small shared CPU spinning OpenMP threads cost far more than they gain (60x slower
    measured on 2 busy cores, with identical results).
    """
    from sklearn.cluster import MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    if not isinstance(n_clusters, int) or n_clusters < 2:
        raise DataError(f"n_clusters must be an integer >= 2, got {n_clusters!r}")
    if not 0.0 < sample_fraction <= 1.0:
        raise DataError(f"sample_fraction must be in (0, 1], got {sample_fraction}")
    rng = np.random.default_rng(seed)
    kept, dim = [], None
    for array in features:
        array = np.asarray(array.detach().cpu() if torch.is_tensor(array) else array,
                           dtype=np.float32)
        if array.ndim != 2 or (dim is not None and array.shape[1] != dim):
            raise DataError(f"features must all be (frames, {dim or 'dim'}), got {array.shape}")
        dim = array.shape[1]
        if sample_fraction < 1.0:
            array = array[rng.random(array.shape[0]) < sample_fraction]
        kept.append(array)
    if not kept:
        raise DataError("no features to cluster (empty corpus?)")
    frames = np.concatenate(kept)
    if frames.shape[0] > max_frames:
        frames = frames[np.sort(rng.choice(frames.shape[0], max_frames, replace=False))]
    if frames.shape[0] < n_clusters:
        raise DataError(f"{frames.shape[0]} frames are too few for {n_clusters} clusters")
    if not np.all(np.isfinite(frames)):
        raise DataError("features contain NaN or infinite values")
    model = MiniBatchKMeans(n_clusters=n_clusters, init="k-means++", max_iter=max_iter,
                            batch_size=min(batch_size, frames.shape[0]), tol=0.0,
                            max_no_improvement=100, n_init=n_init, reassignment_ratio=0.0,
                            random_state=seed, compute_labels=False)
    with threadpool_limits(limits=threads):
        return model.fit(frames)


def save_kmeans(kmeans, path: PathLike) -> Path:
    """Save a k-means model's centers to ``path`` (an ``.npz``), atomically."""
    centers = as_centers(kmeans)
    buffer = io.BytesIO()
    np.savez(buffer, centers=centers.cluster_centers_)
    write_bytes_atomic(path, buffer.getvalue())
    return Path(path)


def load_kmeans(path: PathLike) -> KMeansCenters:
    """Load centers saved by :func:`save_kmeans`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return KMeansCenters(data["centers"])
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"{path}: not a k-means centers file ({error})") from None
