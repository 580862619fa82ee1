"""corkweb behind a real nginx, with the configuration that docs/scaling.md shows.

Two corkweb processes (two "hosts") share pub/sub through a real redis-server; nginx balances
them with docs/deploy/nginx.conf, changed only where the test must (free ports, log path).
Through nginx: the client address and scheme come from the forwarding headers of the trusted
proxy, requests reach both processes, and a publish reaches WebSocket clients on both.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from cli_process import CLIProcess, cli_env
from scaling_helpers import (
    Nginx,
    RedisServer,
    free_port,
    needs_nginx,
    needs_redis,
    needs_redis_package,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "docs" / "deploy" / "nginx.conf"

pytestmark = [needs_nginx, needs_redis, needs_redis_package]


def test_the_docs_show_the_tested_configuration() -> None:
    """docs/scaling.md embeds docs/deploy/nginx.conf verbatim."""
    page = (ROOT / "docs" / "scaling.md").read_text()
    assert "```nginx\n" + CONF.read_text() + "```" in page


def configured(port: int, upstreams: list[int], logs: Path) -> str:
    """The documented configuration with this test's addresses; each change must apply."""
    conf = CONF.read_text()
    changes = {
        "listen 80;": f"listen 127.0.0.1:{port};",
        "server 10.0.0.11:8000;": f"server 127.0.0.1:{upstreams[0]};",
        "server 10.0.0.12:8000;": f"server 127.0.0.1:{upstreams[1]};",
        "/var/log/nginx/": f"{logs}/",
        "worker_processes auto;": "worker_processes 1;",  # deterministic round robin
    }
    for old, new in changes.items():
        assert conf.count(old) == 1, old
        conf = conf.replace(old, new)
    return conf


def http_get(port: int, path: str, headers: bytes = b"", source: str = "127.0.0.1") -> bytes:
    """One request from ``source`` (a loopback address other than nginx's own)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5,
                                  source_address=(source, 0)) as s:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nhost: example.com\r\n"
                  b"connection: close\r\n" + headers + b"\r\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), out
    return body


def test_behind_nginx(tmp_path: Path) -> None:
    from websockets.sync.client import connect

    with RedisServer(tmp_path / "redis") as redis_server:
        # The corkweb hosts trust nginx (which connects from 127.0.0.1) and no one else.
        env = cli_env(CORKWEB_PUBSUB=redis_server.url, CORKWEB_TRUSTED_PROXIES="127.0.0.1")
        with CLIProcess("run", "pubsub_app:app", "--port", "0", env=env) as one, \
                CLIProcess("run", "pubsub_app:app", "--port", "0", env=env) as two:
            one.ready()
            two.ready()
            port = free_port()
            conf = configured(port, [one.port, two.port], tmp_path)
            with Nginx(tmp_path / "nginx", conf, port):
                # The client at 127.0.0.3 forges an address and a scheme: nginx appends the
                # real address, overwrites the scheme, and corkweb believes only nginx.
                forged = b"x-forwarded-for: 6.6.6.6\r\nx-forwarded-proto: https\r\n"
                seen = [json.loads(http_get(port, "/whoami", forged, "127.0.0.3"))
                        for _ in range(4)]
                assert {(s["address"], s["scheme"]) for s in seen} == {("127.0.0.3", "http")}
                assert {s["pid"] for s in seen} == {one.proc.pid, two.proc.pid}
                # Asked directly (not through a trusted proxy), the headers are ignored.
                direct = json.loads(http_get(one.port, "/whoami", forged, "127.0.0.3"))
                assert direct["address"] == "127.0.0.3"

                # WebSockets through nginx, one on each host: a message crosses, once.
                url = f"ws://127.0.0.1:{port}/ws/lobby"
                with connect(url) as c1, connect(url) as c2:
                    wait_until(lambda: redis_server.numsub("corkweb:lobby") == 2,
                               "a subscription on each host")
                    c1.send("from c1")
                    assert c2.recv(timeout=5) == "from c1"
                    c2.send(b"\x00binary\xff")
                    assert c1.recv(timeout=5) == b"\x00binary\xff"  # the next one: no echo
            assert one.stop() == 0 and two.stop() == 0, one.output + two.output
    assert "Traceback" not in one.output + two.output
