"""``python -m hbstan``: the hbstan command line."""

from .cli import main

raise SystemExit(main())
