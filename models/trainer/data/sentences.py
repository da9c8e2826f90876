"""Built-in English text for synthesis: a small sentence grammar and keyword lists.

Everything is drawn from a ``numpy.random.Generator`` passed in, so the text of a
synthesized corpus depends on its seed only.
"""
from __future__ import annotations

import numpy as np

# The ten Speech Commands keywords of the 12-class SUPERB KS task, in its label order.
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN_LABEL = "_unknown_"
SILENCE_LABEL = "_silence_"
KS_CLASSES = KEYWORDS + (UNKNOWN_LABEL, SILENCE_LABEL)

# Speech Commands v0.02's auxiliary words, spoken as the "_unknown_" class.
UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house",
                 "marvin", "nine", "one", "seven", "sheila", "six", "three", "tree", "two",
                 "wow", "zero", "backward", "forward", "follow", "learn", "visual")

_NAMES = ("anna", "peter", "maria", "james", "lucy", "david", "sarah", "tom", "emma",
          "robert", "linda", "michael", "grace", "daniel", "alice", "oliver")
_ADJECTIVES = ("old", "young", "red", "green", "small", "large", "quiet", "noisy", "bright",
               "dark", "warm", "cold", "heavy", "gentle", "strange", "happy", "careful",
               "empty", "golden", "narrow", "wooden", "clever", "sleepy", "busy")
_NOUNS = ("dog", "cat", "teacher", "farmer", "bird", "river", "window", "garden", "letter",
          "kitchen", "doctor", "child", "horse", "table", "mountain", "city", "boat",
          "station", "market", "picture", "student", "engine", "forest", "bottle", "clock",
          "bridge", "village", "pencil", "basket", "mirror")
_PLURALS = ("dogs", "cats", "teachers", "farmers", "birds", "windows", "letters", "doctors",
            "children", "horses", "tables", "boats", "students", "bottles", "clocks", "pencils")
_PLACES = ("park", "house", "school", "hill", "road", "shop", "lake", "office", "library",
           "harbour", "field", "museum")
_VERBS_PAST = ("saw", "found", "carried", "painted", "opened", "followed", "cleaned", "moved",
               "watched", "heard", "lost", "built", "visited", "remembered", "pushed", "called")
_VERBS_BASE = ("see", "find", "carry", "paint", "open", "follow", "clean", "move", "watch",
               "bring", "count", "visit", "describe", "fix", "close", "check")
_VERBS_PLURAL = ("sleep", "run", "wait", "sing", "work", "play", "rest", "talk", "travel",
                 "listen")
_ADVERBS = ("quickly", "slowly", "together", "today", "again", "quietly", "outside", "early",
            "late", "happily")
_PREPOSITIONS = ("near", "behind", "under", "beside", "across", "inside", "above", "around")
_TIMES = ("this morning", "every day", "last night", "before dinner", "after school",
          "on monday", "in the summer", "next week")
_NUMBERS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve")

_TEMPLATES = (
    "the {adj} {noun} {past} the {noun2} {prep} the {place}",
    "{name} {past} a {adj} {noun} {time}",
    "can you {base} the {noun} {prep} the {place}",
    "{number} {adj} {plural} {vplural} {adverb} {prep} the {place}",
    "i think the {noun} is very {adj}",
    "please {base} the {adj} {noun} before {name} comes home",
    "{name} and {name2} {past} the {noun} {time}",
    "why did the {noun} {base} the {adj} {noun2}",
    "we will {base} {number} {plural} {time}",
    "the {place} was {adj} and the {plural} {vplural} {adverb}",
)


def _pick(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    return words[int(rng.integers(len(words)))]


def make_sentence(rng: np.random.Generator) -> str:
    """One random sentence from the built-in grammar (lower case, no punctuation)."""
    template = _pick(rng, _TEMPLATES)
    slots = {
        "adj": _pick(rng, _ADJECTIVES), "noun": _pick(rng, _NOUNS), "noun2": _pick(rng, _NOUNS),
        "plural": _pick(rng, _PLURALS), "place": _pick(rng, _PLACES),
        "past": _pick(rng, _VERBS_PAST), "base": _pick(rng, _VERBS_BASE),
        "vplural": _pick(rng, _VERBS_PLURAL), "adverb": _pick(rng, _ADVERBS),
        "prep": _pick(rng, _PREPOSITIONS), "time": _pick(rng, _TIMES),
        "number": _pick(rng, _NUMBERS), "name": _pick(rng, _NAMES), "name2": _pick(rng, _NAMES),
    }
    return template.format(**slots)
