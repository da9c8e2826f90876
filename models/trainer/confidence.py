"""The confidence convention of every evaluation and of the study, named once and free of
numpy, so that help texts can state it: the two-sided error rate of every test, the level
of every interval (one minus it), and how the reports write that level."""

ALPHA = 0.05
LEVEL = 1 - ALPHA
LEVEL_TEXT = f"{LEVEL * 100:g} %"
