"""The app of tests/test_pubsub_redis.py and tests/test_nginx.py.

Run several copies with ``CORKWEB_PUBSUB=redis://...`` (and ``CORKWEB_TRUSTED_PROXIES`` behind
nginx): a WebSocket on ``/ws/:topic`` subscribes to the topic and publishes what it receives
to the others; ``POST /publish/:topic`` publishes the body (``?binary=1``: as bytes);
``GET /whoami`` tells the client address and scheme this process sees, and its pid.
"""

from __future__ import annotations

import os
from typing import Any

from corkweb import App

app = App(templates=None)


def on_upgrade(res: Any, req: Any, ctx: Any) -> None:
    res.upgrade(req.get_header("sec-websocket-key"), req.get_header("sec-websocket-protocol"),
                req.get_header("sec-websocket-extensions"), ctx,
                {"topic": req.get_parameter("topic")})


def on_open(ws: Any) -> None:
    ws.subscribe(ws.get_user_data()["topic"])


def on_message(ws: Any, message: Any, opcode: Any) -> None:
    ws.publish(ws.get_user_data()["topic"], message, opcode)


app.ws("/ws/:topic", {"upgrade": on_upgrade, "open": on_open, "message": on_message})


@app.post("/publish/:topic")
async def publish(res: Any, req: Any) -> None:
    body = await res.get_data()
    message = body if req.get_query("binary") == "1" else body.decode()
    app.publish(req.get_parameter("topic"), message)
    res.end(f"published by {os.getpid()}")


@app.get("/whoami")
def whoami(res: Any, req: Any) -> None:
    res.cork_end({"address": res.get_remote_address(), "scheme": res.get_scheme(),
                  "pid": os.getpid()})
