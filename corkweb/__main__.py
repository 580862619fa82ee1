"""``python -m corkweb``: the same as the ``corkweb`` command, plus socketify.py's command line
(``python -m corkweb module:function --port N``, see ``corkweb/socketify_cli.py``)."""

from __future__ import annotations

import sys

from .cli import main
from .socketify_cli import is_socketify_form
from .socketify_cli import main as socketify_main

if __name__ == "__main__":
    if is_socketify_form(sys.argv[1:]):
        sys.exit(socketify_main(sys.argv[1:]))
    sys.exit(main())
