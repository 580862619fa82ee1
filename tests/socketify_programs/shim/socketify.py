"""A module named ``socketify`` that only re-exports corkweb's public names.

The socketify-program tests put this folder first on ``PYTHONPATH`` of the programs they
start, so ``from socketify import App`` runs corkweb. It is never installed: the real
socketify.py stays importable everywhere else (the benchmarks compare against it).
"""

from corkweb import *  # noqa: F403
from corkweb import __all__  # noqa: F401
