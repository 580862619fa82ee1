"""``python -m corkweb``: the same as the ``corkweb`` command."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
