"""``python -m orchestra``: the ``orchestra`` command, for when its script is not on PATH
(a virtual environment that is not activated)."""

from orchestra._cli import main

raise SystemExit(main())
