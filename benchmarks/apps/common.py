"""What every benchmark app shares: the port, the folders, the data of the Jinja page.

Only the standard library is imported here: each app pays for its own framework alone.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

HOST = "127.0.0.1"
TEMPLATES_DIR = str(Path(__file__).resolve().parent.parent / "templates")
TEMPLATE = "page.html"
TITLE = "Quarterly report <Q3> & friends"
PLAINTEXT = "Hello, World!"
MESSAGE = {"message": "Hello, World!"}

# 20 rows, built once. Every third name needs escaping, so autoescape has work to do.
# The page is sized so that rendering it alone costs about what DESIGN.md §5 assumes
# (≈ 70 µs on the development machine).
ROWS = [
    {
        "id": i,
        "name": f"User {i} <b>" if i % 3 == 0 else f"User {i}",
        "email": f"user{i}@example.com",
    }
    for i in range(1, 21)
]


def port() -> int:
    """The port to listen on: the first argument, else ``BENCH_PORT``, else 8000."""
    if len(sys.argv) > 1:
        return int(sys.argv[1])
    return int(os.environ.get("BENCH_PORT", "8000"))


def static_dir() -> str:
    """The folder of the static files (``BENCH_STATIC_DIR``, which the runner fills)."""
    default = os.path.join(tempfile.gettempdir(), "corkweb-bench-static")
    path = os.environ.get("BENCH_STATIC_DIR") or default
    os.makedirs(path, exist_ok=True)
    return path
