"""``profile-encoder study``: does binarization hurt one encoder less than another, and why.

:mod:`.settings` (the options), :mod:`.plan` (jobs, dependencies, shards, state on disk),
:mod:`.runner` (runs a shard, resumable), :mod:`.hierarchical` (seed-inclusive bootstrap
intervals, p values, Holm), :mod:`.stats` (Table 2's t-interval over seeds, the items-only
paired interval), :mod:`.claims` (the study's differences, which tasks are informative),
:mod:`.propagation` (per-layer error of a binarized student against its teacher),
:mod:`.archive` (the committed copy of the runs) and :mod:`.report` with :mod:`.verdicts`
(``reports/study/``).
"""
