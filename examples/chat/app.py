"""A chat room over WebSockets: pub/sub topics, route parameters, corked sends.

Run it:  python examples/chat/app.py   (then open http://127.0.0.1:3000/ in two tabs)

Each room is a pub/sub topic (``/chat/:room``); a message is published once to every
member of the room. The page is plain HTML + JavaScript, served from ``index.html``.
"""

import os
from pathlib import Path

from corkweb import App

app = App(templates=None)
PAGE = (Path(__file__).parent / "index.html").read_bytes()


@app.get("/")
def home(res, req):
    res.write_header("content-type", "text/html; charset=utf-8").end(PAGE)


def upgrade(res, req, ctx):
    """Check the nickname before accepting; it becomes the socket's user data."""
    name = (req.get_query("name") or "").strip()[:32]
    if not name:
        res.write_status(400).end("a ?name= is required")
        return
    user = {"name": name, "room": req.get_parameter("room")}
    res.upgrade(req.get_header("sec-websocket-key"), req.get_header("sec-websocket-protocol"),
                req.get_header("sec-websocket-extensions"), ctx, user)


chat = app.ws("/chat/:room", {"upgrade": upgrade, "max_payload_length": 4096,
                               "idle_timeout": 60})


@chat.on_open
def on_open(ws):
    user = ws.get_user_data()
    ws.subscribe(user["room"])
    # Both sends leave in one write with the 101 answer (the callback is corked).
    ws.send({"type": "welcome", "room": user["room"],
             "members": app.num_subscribers(user["room"])})
    ws.publish(user["room"], {"type": "join", "name": user["name"]})


@chat.on_message
def on_message(ws, message, opcode):
    user = ws.get_user_data()
    text = message if isinstance(message, str) else message.decode("utf-8", "replace")
    event = {"type": "message", "name": user["name"], "text": text[:1000]}
    ws.publish(user["room"], event)  # to everybody else in the room…
    ws.send(event)  # …and back to the sender, so every tab shows the same list


@chat.on_close
def on_close(ws, code, reason):
    user = ws.get_user_data()
    app.publish(user["room"], {"type": "leave", "name": user["name"]})


if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "3000")))
