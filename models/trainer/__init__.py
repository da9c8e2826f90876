"""Offline training data for HuBERT-style encoders: synthesis, corpora, features, targets."""
from .errors import DataError

__all__ = ["DataError"]
