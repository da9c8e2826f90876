"""Multi-distillation: a chain of precisions (W32A32 -> W1A4 -> ...), one run per stage.

Owns the chain's folders, its record (``chain.json``) and its resumption (:mod:`.chain`);
each stage is an ordinary run of :mod:`..pretrain`, whose :mod:`..pretrain.distillation`
holds the objective a stage trains with. It imports the trainer base, :mod:`..data` and
:mod:`..pretrain`.
"""
