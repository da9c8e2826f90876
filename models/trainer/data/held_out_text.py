"""Text for the ASR, QbE and prosody corpora: a grammar whose test part is held out.

The grammar of :mod:`models.trainer.data.sentences` has 10 templates and ~200 words, all of
which appear in training, so an ASR test on it measures memorization. This one has 16
templates and ~330 content words. :func:`split_grammar` holds out 4 templates and every
fourth word of each word class: training sentences use only the other templates and
words, valid and test sentences only the held-out ones (function words such as "the"
are shared, as they are in any language). For a corpus whose test must share no word at
all with training or validation (the built-in phoneme-recognition corpus of
:mod:`models.trainer.data.synth_plan`), :func:`word_disjoint_templates` splits the templates
with no function word in common and :func:`held_out_halves` splits the held-out words
between valid and test.
"""
from __future__ import annotations

import numpy as np

WORDS = {
    "name": ("anna", "peter", "maria", "james", "lucy", "david", "sarah", "thomas", "emma",
             "robert", "linda", "michael", "grace", "daniel", "alice", "oliver", "henry",
             "sophie", "victor", "julia", "martin", "clara", "simon", "helen"),
    "adj": ("old", "young", "red", "green", "small", "large", "quiet", "noisy", "bright",
            "dark", "warm", "cold", "heavy", "gentle", "strange", "happy", "careful", "empty",
            "golden", "narrow", "wooden", "clever", "sleepy", "busy", "silver", "tiny",
            "famous", "lonely", "purple", "brave", "simple", "ancient", "proud", "lucky",
            "honest", "polite", "yellow", "curious", "modern", "rusty"),
    "noun": ("dog", "cat", "teacher", "farmer", "bird", "river", "window", "garden", "letter",
             "kitchen", "doctor", "child", "horse", "table", "mountain", "city", "boat",
             "station", "market", "picture", "student", "engine", "forest", "bottle", "clock",
             "bridge", "village", "pencil", "basket", "mirror", "sailor", "painter", "rabbit",
             "ladder", "candle", "wallet", "blanket", "tower", "island", "camera", "jacket",
             "guitar", "tractor", "hammer", "dragon", "pilot", "baker", "kettle"),
    "plural": ("dogs", "cats", "teachers", "farmers", "birds", "windows", "letters",
               "doctors", "children", "horses", "tables", "boats", "students", "bottles",
               "clocks", "pencils", "sailors", "rabbits", "candles", "towers", "pilots",
               "bakers", "cameras", "jackets"),
    "place": ("park", "house", "school", "hill", "road", "shop", "lake", "office", "library",
              "harbour", "field", "museum", "beach", "castle", "airport", "hospital",
              "theatre", "garage", "farm", "valley"),
    "past": ("saw", "found", "carried", "painted", "opened", "followed", "cleaned", "moved",
             "watched", "heard", "lost", "built", "visited", "remembered", "pushed", "called",
             "fixed", "washed", "dropped", "sold", "borrowed", "counted", "noticed", "touched"),
    "base": ("see", "find", "carry", "paint", "open", "follow", "clean", "move", "watch",
             "bring", "count", "visit", "describe", "fix", "close", "check", "wash", "sell",
             "borrow", "lift", "measure", "draw", "hide", "order"),
    "vplural": ("sleep", "run", "wait", "sing", "work", "play", "rest", "talk", "travel",
                "listen", "dance", "swim", "laugh", "shout", "wander", "cook"),
    "adverb": ("quickly", "slowly", "together", "today", "again", "quietly", "outside",
               "early", "late", "happily", "loudly", "calmly", "rarely", "often", "softly",
               "badly"),
    "prep": ("near", "behind", "under", "beside", "across", "inside", "above", "around"),
    "number": ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
               "twelve", "eleven", "twenty"),
}

TEMPLATES = (
    "the {adj} {noun} {past} the {noun2} {prep} the {place}",
    "{name} {past} a {adj} {noun} near the {place}",
    "can you {base} the {noun} {prep} the {place}",
    "{number} {adj} {plural} {vplural} {adverb} {prep} the {place}",
    "i think the {noun} is very {adj}",
    "please {base} the {adj} {noun} before {name} comes home",
    "{name} and {name2} {past} the {noun} {adverb}",
    "why did the {noun} {base} the {adj} {noun2}",
    "we will {base} {number} {plural} {adverb}",
    "the {place} was {adj} and the {plural} {vplural} {adverb}",
    "my {adj} {noun} {past} {number} {plural}",
    "do not {base} the {noun} in the {place}",
    "{name} wants to {base} a {adj} {noun} {adverb}",
    "every {noun} in the {place} is {adj}",
    "the {plural} {vplural} while {name} {past} the {noun}",
    "there are {number} {adj} {plural} {prep} the {noun}",
)
HELD_OUT_TEMPLATES = 4          # the last four templates
HELD_OUT_EVERY = 4              # every fourth word of each class


def split_words(held_out: bool) -> dict[str, tuple[str, ...]]:
    """The word classes of the training (``held_out=False``) or the held-out vocabulary."""
    return {kind: tuple(w for i, w in enumerate(words)
                        if (i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1) == held_out)
            for kind, words in WORDS.items()}


def split_templates(held_out: bool) -> tuple[str, ...]:
    cut = len(TEMPLATES) - HELD_OUT_TEMPLATES
    return TEMPLATES[cut:] if held_out else TEMPLATES[:cut]


def held_out_halves() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """(valid, test): the held-out vocabulary in two disjoint halves (alternate words of
    each class), for a corpus whose valid and test words must differ too. Every class keeps
    a word in both; test gets the larger half of a class with an odd count."""
    held_out = split_words(True)
    return ({kind: words[1::2] for kind, words in held_out.items()},
            {kind: words[0::2] for kind, words in held_out.items()})


def template_words(template: str) -> set[str]:
    """The words a template always says (its function words), slots left out."""
    return {word for word in template.split() if not word.startswith("{")}


def word_disjoint_templates() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(training, held-out) templates that share no word at all, not even "the".

    "the" is in 13 of the 16 templates, so the held-out ones are the three without it;
    training keeps the templates that share none of their words (12; the one with "a" is
    left out). :func:`split_templates` instead shares function words across the split.
    """
    held_out = tuple(t for t in TEMPLATES if "the" not in template_words(t))
    said = set().union(*map(template_words, held_out))
    training = tuple(t for t in TEMPLATES if t not in held_out and not template_words(t) & said)
    return training, held_out


def make_sentence(rng: np.random.Generator, held_out: bool, **fixed: str) -> str:
    """One sentence from the training or held-out part; ``fixed`` sets slots (e.g. noun=)."""
    return sentence_from(rng, split_templates(held_out), split_words(held_out), **fixed)


def sentence_from(rng: np.random.Generator, templates: tuple[str, ...],
                  words: dict[str, tuple[str, ...]], **fixed: str) -> str:
    """One sentence from ``templates`` with slots drawn from ``words`` (every class of
    :data:`WORDS`); ``fixed`` sets slots."""
    if fixed:   # only templates that have every fixed slot
        templates = tuple(t for t in templates if all("{" + k + "}" in t for k in fixed))
    template = templates[int(rng.integers(len(templates)))]

    def draw(kind: str) -> str:
        choices = words[kind]
        return choices[int(rng.integers(len(choices)))]

    slots = {kind: draw(kind) for kind in WORDS}
    slots.update(noun2=draw("noun"), name2=draw("name"))
    slots.update(fixed)
    return template.format(**slots)
