"""SUPERB-style evaluation of an upstream: every task, its data and its head.

Owns the task table (:mod:`.task_table`), the evaluation's options (:mod:`.settings`),
heads and their training (:mod:`.heads`), the ten task modules with their shared
``Task``, synthesis, evaluation and metrics (:mod:`.tasks`), task folders from real
corpora (:mod:`.real_corpora`) and the runner that loads an upstream and writes
``results.json`` (:mod:`.runner`). It imports the trainer base, :mod:`..data`,
:mod:`..pretrain` (run folders, devices) and the zoo.
"""
