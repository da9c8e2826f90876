"""``profile-encoder study``: does binarization hurt one encoder less than another, and why.

:mod:`.settings` (the options), :mod:`.presets` (budgets and variants), :mod:`.recipe` (what
a study's record says it ran), :mod:`.layout` (where each run and record lives in a study
folder), :mod:`.plan` (jobs, dependencies, state on disk),
:mod:`.order` (shards and the order jobs run in), :mod:`.restored` (a dry run that sees a
restore without making it), :mod:`.gate` (the teacher gate), :mod:`.anchors` (random-init
anchors copied from an earlier study), :mod:`.budget` (the time plan), :mod:`.runner` (runs
a shard, resumable), :mod:`.archive` (the committed copy of the runs), :mod:`.collect` (a
study's evaluations read back), :mod:`.hierarchical` (seed-inclusive bootstrap intervals, p
values, Holm), :mod:`.stats` (Table 2's t-interval over seeds, the items-only paired
interval), :mod:`.claims` (the study's differences, which tasks are informative),
:mod:`.propagation` (per-layer error of a binarized student against its teacher),
:mod:`.summary` (every number the report states, summary.json) and :mod:`.report` with
:mod:`.verdicts`, :mod:`.sensitivity` and :mod:`.charts`, which word and draw it
(``reports/study/``).
"""
