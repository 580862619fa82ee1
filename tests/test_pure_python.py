"""The pure-Python twins of the C core, under the tests of what they stand in for.

The suite runs with the C core when it is built (CI builds it). Machines without a compiler
run the Python classes instead, with the same behaviour promised, so the tests of the parser,
the exchange, the connection, corking and the hostile-input battery run here again in a child
pytest with ``CORKWEB_PURE_PYTHON=1``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

UNDER_BOTH = [
    "test_speedups.py", "test_exchange.py", "test_http.py", "test_wire_parser.py",
    "test_wire_fast_heads.py", "hostile", "test_access_log.py", "test_corking.py",
    "test_syscalls.py", "test_app.py", "test_memory.py", "test_client_gone.py",
    "test_timeouts.py", "test_shutdown.py", "test_asgi_http.py", "test_state_machines.py",
]


def test_the_pure_python_twins_pass_the_core_tests() -> None:
    env = {**os.environ, "CORKWEB_PURE_PYTHON": "1"}
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
         *(str(TESTS / name) for name in UNDER_BOTH)],
        cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=600)
    summary = child.stdout.strip().splitlines()[-1] if child.stdout.strip() else ""
    assert child.returncode == 0, child.stdout[-6000:] + child.stderr[-3000:]
    assert " passed" in summary and "skipped" not in summary, summary
