"""One training run: HuBERT masked-prediction pre-training, or a student distilled from a teacher.

Owns the run's options (:mod:`.settings`), k-means targets (:mod:`.targets`), the data
pipeline of each step (:mod:`.batches`), the masked-prediction loss (:mod:`.loss`), BiT's
distillation objective and teacher loading (:mod:`.distillation`: a run with ``--teacher``
is the same loop with another loss), run folders and checkpoints (:mod:`.checkpoint`),
processes and devices (:mod:`.distributed`), the set-up (:mod:`.run_setup`) and the loop
(:mod:`.loop`). It imports the trainer base, :mod:`..data` and the zoo.
"""
