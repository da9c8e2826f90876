"""``profile-encoder study``: does binarization hurt one encoder less than another, and why.

:mod:`.settings` (the options), :mod:`.plan` (jobs, dependencies, shards, state on disk),
:mod:`.runner` (runs a shard, resumable), :mod:`.stats` (intervals over seeds and paired
bootstraps over test items), :mod:`.propagation` (per-layer error of a binarized student
against its teacher) and :mod:`.report` (``reports/study/``).
"""
