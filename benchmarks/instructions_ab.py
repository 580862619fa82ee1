"""Before/after in instructions per request: any checkout's corkweb under callgrind, the
WebSocket echo included (``benchmarks/instructions.py`` compares servers; this compares trees).

Starts ``benchmarks/apps/corkweb_app.py`` under ``valgrind --tool=callgrind``, then for each
workload: warms up, zeroes the counters (``callgrind_control -z``), makes ``--requests``
requests one round trip at a time from a plain-socket client (16 per write for the pipelined
workload, one message per round trip for the WebSocket echo), dumps the counters
(``callgrind_control -d``) and divides. The server runs single-threaded on one connection, so
the figure is the whole server's work per request: parser, dispatch, response, corker, uvloop
and the system-call wrappers; timers (the date line, the sweep) add a little noise.

  python -m benchmarks.instructions_ab                     # every workload, 2,000 requests each
  python -m benchmarks.instructions_ab --workloads plaintext,ws --requests 5000
  python -m benchmarks.instructions_ab --tree /tmp/old-checkout      # another tree's corkweb
  python -m benchmarks.instructions_ab --app raw --workloads plaintext,json,pipelined
                                           # a hosted ASGI app (raw, starlette, fastapi)
  python -m benchmarks.instructions_ab --app raw --keep /tmp/cg   # dumps for callgrind_annotate
  python -m benchmarks.instructions_ab --app fastapi --server uvicorn --workloads json
                                           # the same app on uvicorn (httptools, uvloop)

Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import base64
import glob
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

WORKLOADS = ("plaintext", "json", "param", "page", "pipelined", "ws")
#: The hosted ASGI apps (``benchmarks/apps/asgi_apps.py``): /plaintext and /json only.
HOSTED = ("raw", "starlette", "fastapi")
PATHS = {"plaintext": "/plaintext", "json": "/json", "param": "/user/42", "page": "/page",
         "pipelined": "/plaintext"}


def request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


def read_responses(sock: socket.socket, buf: bytes, count: int) -> bytes:
    """Read ``count`` complete content-length responses; return what is left over."""
    while count:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].lower()
            m = re.search(rb"content-length: (\d+)", head)
            length = int(m.group(1)) if m else 0
            total = end + 4 + length
            if len(buf) >= total:
                buf = buf[total:]
                count -= 1
                continue
        more = sock.recv(1 << 20)
        if not more:
            raise ConnectionError("server closed the connection")
        buf += more
    return buf


def http_rounds(port: int, path: str, rounds: int, per_write: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        data = request(path) * per_write
        buf = b""
        for _ in range(rounds):
            sock.sendall(data)
            buf = read_responses(sock, buf, per_write)


def ws_rounds(port: int, rounds: int) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall((f"GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(4096)
        buf = buf.split(b"\r\n\r\n", 1)[1]
        payload = b"Hello, World!"
        mask = b"\x01\x02\x03\x04"
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        frame = bytes([0x81, 0x80 | len(payload)]) + mask + masked
        want = 2 + len(payload)
        for _ in range(rounds):
            sock.sendall(frame)
            while len(buf) < want:
                buf += sock.recv(4096)
            buf = buf[want:]


def drive(port: int, workload: str, rounds: int) -> None:
    if workload == "ws":
        ws_rounds(port, rounds)
    elif workload == "pipelined":
        http_rounds(port, PATHS[workload], max(1, rounds // 16), 16)
    else:
        http_rounds(port, PATHS[workload], rounds, 1)


def total_ir(path: str) -> int:
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise ValueError(f"no totals in {path}")


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)  # polling a process we do not control: no signal to wait on
    raise TimeoutError("server did not listen")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--port", type=int, default=18931)
    parser.add_argument("--app", default="native", choices=("native", *HOSTED),
                        help="native: corkweb handlers; else that app of "
                             "benchmarks/apps/asgi_apps.py hosted through --interface asgi")
    parser.add_argument("--server", default="corkweb", choices=("corkweb", "uvicorn"),
                        help="what serves a hosted app: corkweb, or uvicorn (httptools, "
                             "uvloop, no access log) for the same count of a peer")
    parser.add_argument("--keep", help="a folder to keep the callgrind dumps in")
    parser.add_argument("--tree", default=os.path.dirname(os.path.dirname(os.path.abspath(
        __file__))), help="the checkout whose corkweb and benchmark app are served")
    args = parser.parse_args(argv)
    out = args.keep or tempfile.mkdtemp(prefix="corkweb-callgrind-")
    os.makedirs(out, exist_ok=True)
    if args.app == "native":
        served = ["-m", "benchmarks.apps.corkweb_app", str(args.port)]
    elif args.server == "uvicorn":
        served = ["-m", "uvicorn", "--http", "httptools", "--loop", "uvloop", "--no-access-log",
                  "--log-level", "warning", "--host", "127.0.0.1",
                  "--port", str(args.port), f"benchmarks.apps.asgi_apps:{args.app}"]
    else:
        served = ["-m", "corkweb", "run", "--interface", "asgi", "--host", "127.0.0.1",
                  "--port", str(args.port), "--log-level", "warning",
                  f"benchmarks.apps.asgi_apps:{args.app}"]
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p",
           sys.executable, *served]
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=args.tree)
    proc = subprocess.Popen(cmd, env=env, cwd=args.tree, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_listening(args.port, proc)
        print(f"{'workload':<10} {'instructions/request':>22}")
        for workload in args.workloads.split(","):
            drive(args.port, workload, args.warmup)
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            drive(args.port, workload, args.requests)
            before = set(glob.glob(f"{out}/cg.{proc.pid}.*"))
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            dumps = sorted(set(glob.glob(f"{out}/cg.{proc.pid}.*")) - before)
            count = args.requests if workload != "pipelined" else (args.requests // 16) * 16
            print(f"{workload:<10} {total_ir(dumps[-1]) / count:>22,.0f}", flush=True)
            if args.keep:
                os.replace(dumps[-1], os.path.join(out, f"{args.app}-{workload}.callgrind"))
    finally:
        proc.terminate()
        proc.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
