"""SID: speaker identification among the corpus's speakers (an espeak-ng voice with its own
habitual pitch and rate), planned by :mod:`models.trainer.data.synth_plan`; the splits hold
out utterances, not speakers. Head, metric and chance: :mod:`.classification`.
"""
from __future__ import annotations

from .classification import UtteranceClassification


class SpeakerIdentification(UtteranceClassification):
    name = "sid"
    classes_are = "speakers"


TASK = SpeakerIdentification()
