"""Count the send syscalls a server makes per connection, with strace.

    python docs/strace/count_sends.py docs/strace/uncorked.py
    python docs/strace/count_sends.py docs/strace/corked.py

It starts ``SERVER PORT`` under ``strace -f -e trace=network,write,writev``, makes one request
on a first connection and sixteen pipelined requests (sent in one packet) on a second, stops the
server and prints how many ``write``/``writev``/``send*`` calls each connection received.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEND = re.compile(r"^(\d+)\s+(write|writev|sendto|sendmsg|send)\((\d+),")
ACCEPT = re.compile(r"^(\d+)\s+accept4?\(.*\)\s+=\s+(\d+)")
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exchange(port, payload, responses):
    """Send ``payload``, read until ``responses`` bodies have arrived."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        data = b""
        while data.count(b"Hello, World!") < responses:
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit(f"connection closed early: {data!r}")
            data += chunk


def main(server):
    port = free_port()
    trace = Path(tempfile.mkdtemp()) / "trace.txt"
    proc = subprocess.Popen(
        ["strace", "-f", "-e", "trace=network,write,writev", "-o", str(trace),
         sys.executable, server, str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:  # wait until it listens; this probe connection makes no request
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start") from None
            time.sleep(0.05)
    exchange(port, REQUEST, 1)
    exchange(port, REQUEST * 16, 16)
    time.sleep(0.2)  # let strace write out the last lines
    for child in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split():
        os.kill(int(child), signal.SIGTERM)
    proc.wait(30)

    counts, order = {}, []
    for line in trace.read_text().splitlines():
        if m := ACCEPT.match(line):
            counts[int(m.group(2))] = 0
            order.append(int(m.group(2)))
        elif (m := SEND.match(line)) and int(m.group(3)) in counts:
            counts[int(m.group(3))] += 1
    sends = [counts[fd] for fd in order][1:]  # skip the probe
    print(f"{Path(server).name}: 1 request -> {sends[0]} send syscalls; "
          f"16 pipelined requests -> {sends[1]} send syscalls")


if __name__ == "__main__":
    main(sys.argv[1])
