"""Speech data: synthesis with espeak-ng, real corpora's manifests, features and datasets.

Owns the audio and manifest formats (:mod:`.audio`, :mod:`.manifest`), the espeak-ng
wrapper (:mod:`.espeak`), the built-in text (:mod:`.sentences`, :mod:`.held_out_text`), the
plan and rendering of the synthetic corpora (:mod:`.synth_plan`, :mod:`.synth`), manifests
for LibriSpeech and Speech Commands (:mod:`.corpora`), Kaldi-compatible MFCC
(:mod:`.features`) and the torch datasets (:mod:`.datasets`). It imports only the trainer
base (:mod:`..errors`, :mod:`..fileio`) and the zoo's constants; synthesis never imports
torch (only :mod:`.datasets` does).
"""

# A corpus folder holds this folder for pre-training and one per SUPERB task.
PRETRAIN = "pretrain"
# Its manifests: the pre-training corpus has no test split.
PRETRAIN_SPLITS = ("train", "valid")
# Written last into a corpus folder (what it was synthesized with), so it marks a finished one.
CORPUS_FILE = "corpus.json"
# The corpus a run, an evaluation or a study synthesizes for itself when given no --data:
# this folder inside its own output folder.
OWN_DATA = "data"
