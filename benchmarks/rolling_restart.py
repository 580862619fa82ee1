"""Rolling restarts under load: does a SIGHUP lose requests?

    python -m benchmarks.rolling_restart [--workers 2] [--connections 32] [--restarts 5]

Starts ``corkweb run benchmarks.apps.corkweb_app:app --workers N`` on a free port, drives
``GET /plaintext`` with ``wrk -c CONNECTIONS`` and, while wrk runs, sends the supervisor
SIGHUP ``--restarts`` times, each once the previous new generation is ready and the old one
has stopped. A SIGHUP starts new workers on the same sockets, then drains the old ones: a
request lost in that hand-over shows up in wrk's report as a socket error (``read``: the
connection closed with a request unanswered; ``connect``: refused) or a non-2xx answer.

Prints wrk's request count and error counters; exit status 1 if any request was lost.
Not part of the test suite (it takes both cores for its duration).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time

from benchmarks import wrk


class Supervisor:
    """``corkweb run`` in a subprocess with its log lines collected."""

    def __init__(self, workers: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "corkweb", "run", "benchmarks.apps.corkweb_app:app",
             "--port", "0", "--workers", str(workers)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 60.0) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                hits = [m for m in map(regex.search, self.lines) if m]
                if len(hits) >= count:
                    return hits[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"no {pattern!r} (x{count}); log:\n" + "\n".join(
                        self.lines[-30:]))
                self.cond.wait(min(left, 0.5))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--restarts", type=int, default=5)
    args = ap.parse_args()
    if not wrk.available():
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    sup = Supervisor(args.workers)
    try:
        port = int(sup.wait_for(r"(?:serving \S+|listening) on http://\S+:(\d+)").group(1))
        duration = 4 + 3 * args.restarts
        result: dict = {}

        def load() -> None:
            result.update(wrk.run(f"http://127.0.0.1:{port}/plaintext", duration,
                                  args.connections, pin=[]))

        loader = threading.Thread(target=load)
        loader.start()
        time.sleep(2)  # load running before the first restart
        for n in range(1, args.restarts + 1):
            os.kill(sup.proc.pid, signal.SIGHUP)
            sup.wait_for("new workers ready; old workers stopping gracefully", count=n)
            time.sleep(2)  # the old generation drains while the load goes on
        loader.join()
        errors = result.get("socket_errors", {})
        lost = sum(errors.values()) + result.get("non_2xx", 0)
        print(f"{args.restarts} rolling restarts of {args.workers} workers under wrk "
              f"-c{args.connections} for {duration}s: {result.get('requests', 0)} requests, "
              f"socket errors {errors or 'none'}, non-2xx {result.get('non_2xx', 0)}: "
              f"{'no request lost' if not lost else f'{lost} lost'}")
        return 1 if lost else 0
    finally:
        sup.proc.send_signal(signal.SIGTERM)
        try:
            sup.proc.wait(30)
        except subprocess.TimeoutExpired:
            sup.proc.kill()


if __name__ == "__main__":
    sys.exit(main())
