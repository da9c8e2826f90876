"""The commands whose options come from the trainer (the ``models`` package): the line each
shows in help, and the backend they train and evaluate with unless told otherwise.

Named in the counting core, importing nothing, because the top-level help lists these
commands without mounting their parsers (importing ``models`` would shadow a user's own
package of that name, see :mod:`profiler.commands.loading`); each command's parser, the
trainer's own CLI and the study's settings take the same names from here.
"""

DATA_COMMAND = "data"
TRAINING_COMMANDS = {
    "train": "HuBERT pre-training, or BiT distillation, of a zoo model",
    "superb": "SUPERB-style evaluation of a trained (or random) upstream",
    DATA_COMMAND: "offline training data: synthesis, corpora, k-means targets",
    "study": "FP against binarized encoders: pre-train, distill, evaluate, report",
}
# The bundled minimal HuBERT trainer (profiler.adapters.bundled.BundledBackend).
DEFAULT_BACKEND = "bundled"
