"""Does memory come back when connections end? RSS after many 8 MiB uploads.

    python -m benchmarks.memory_release [--count 1000] [--size 8] [--gc on|off]

Starts a corkweb server in a subprocess (this file with ``--serve``) whose ``POST /upload``
awaits the whole body and answers its length. Then, one connection at a time:

* ``--count`` **aborted** uploads: the head says ``--size`` MiB, all but the last byte is sent,
  and the client closes;
* ``--count`` **completed** uploads: the whole body, the answer read, the connection closed.

Each batch gets a fresh server. After it, the script prints the server's RSS (``VmRSS``), then
asks the server to run ``gc.collect()`` (``GET /__gc``) and prints the RSS again: memory that
only a collection gives back was held by reference cycles. ``--gc off`` disables the automatic
collector in the server (only reference counting frees anything), ``--gc on`` (the default)
leaves it as Python ships it.
Not part of the test suite; ``tests/test_memory.py`` asserts the same property in-process.
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import subprocess
import sys
import time

MiB = 1024 * 1024


def serve(port_file: str, collector: str) -> None:
    from corkweb import App, Limits

    app = App(templates=None, limits=Limits(max_body=64 * MiB))

    @app.post("/upload")
    async def upload(res, req):
        data = await res.get_data()
        res.end(str(len(data)))

    @app.get("/__gc")
    def collect(res, req):
        res.end(str(gc.collect()))

    def listening(info: dict) -> None:
        with open(port_file + ".tmp", "w") as f:
            f.write(str(info["port"]))
        os.replace(port_file + ".tmp", port_file)

    if collector == "off":
        gc.disable()
        app.on_start(gc.disable)  # serve() runs gc.freeze(), not enable: stays off
    app.listen({"port": 0, "host": "127.0.0.1"}, listening)
    app.run()


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                if len(body) >= length:
                    return out
    return out


def upload_head(size: int) -> bytes:
    return (b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % size)


def run_batch(kind: str, args: argparse.Namespace) -> None:
    """One fresh server, ``args.count`` uploads of one kind, RSS before and after."""
    port_file = f"/tmp/corkweb-memory-{os.getpid()}.port"
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.memory_release", "--serve",
                             port_file, "--gc", args.gc])
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        with open(port_file) as f:
            port = int(f.read())
        size = args.size * MiB
        body = b"x" * size
        before = rss_mib(proc.pid)
        t0 = time.monotonic()
        for _ in range(args.count):
            if kind == "aborted":
                with socket.create_connection(("127.0.0.1", port)) as s:
                    s.sendall(upload_head(size) + body[:-1])
            else:
                answer = request(port, upload_head(size) + body)
                assert answer.endswith(str(size).encode()), answer[:200]
        # Let the server take in the last close (connection_lost) before measuring.
        request(port, b"GET /missing HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        time.sleep(0.5)
        after = rss_mib(proc.pid)
        request(port, b"GET /__gc HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        collected = rss_mib(proc.pid)
        print(f"{args.count} {kind} {args.size} MiB uploads in {time.monotonic() - t0:.1f}s "
              f"(automatic gc {args.gc}): RSS {before:.1f} -> {after:.1f} MiB "
              f"({after - before:+.1f}); after gc.collect() {collected:.1f} MiB", flush=True)
    finally:
        proc.terminate()
        proc.wait(20)
        if os.path.exists(port_file):
            os.unlink(port_file)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--size", type=int, default=8, help="MiB per upload")
    ap.add_argument("--gc", choices=("on", "off"), default="on")
    ap.add_argument("--serve", metavar="PORT_FILE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.gc)
        return 0
    for kind in ("aborted", "completed"):
        run_batch(kind, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
