"""KS: keyword spotting, Speech Commands' 12 classes (ten keywords, ``_unknown_``,
``_silence_``) in 1 s clips, planned by :mod:`models.trainer.data.synth_plan` (splits held
out by voice: accent and variant). Head, metric and chance: :mod:`.classification`.
"""
from __future__ import annotations

from .classification import UtteranceClassification


class KeywordSpotting(UtteranceClassification):
    name = "ks"


TASK = KeywordSpotting()
