"""``python -m models.trainer <command>``: see :mod:`models.trainer.cli`."""
from .cli import main

raise SystemExit(main())
