# ruff: noqa: UP031  (socketify's examples format with %)
"""WebSockets: pub/sub from a socket and from the app, text for str, and the
"send until buffered, continue on drain" backpressure loop."""

import os

from socketify import App, CompressOptions, OpCode

LIMIT = 64 * 1024
TOTAL = int(os.environ.get("FLOOD_TOTAL", "20000"))
state = {"sent": 0, "drains": 0}


def fill(ws):
    # socketify's backpressure example: send while little waits on the socket.
    while ws.get_buffered_amount() < LIMIT and state["sent"] < TOTAL:
        ws.send("message %06d %s" % (state["sent"], "x" * 200))
        state["sent"] += 1
    if state["sent"] >= TOTAL:
        ws.send("done after %d drains" % state["drains"], OpCode.TEXT)
    elif not state["drains"]:
        print("waiting for drain after %d messages" % state["sent"], flush=True)


def flood_drain(ws):
    state["drains"] += 1
    fill(ws)


def chat_open(ws):
    ws.subscribe("room")
    ws.send("welcome")


def chat_message(ws, message, opcode):
    if message == "frag":
        ws.send_first_fragment("one ", OpCode.TEXT)
        ws.send_fragment("two ")
        ws.send_last_fragment("three")
    elif message == "addr":
        ws.send(ws.get_remote_address_bytes())
    elif message == "bye":
        ws.cork_end(1000, "bye")
    elif message == "all":
        ws.cork_send("app.publish reaches everyone")
        app.publish("room", "from the app")
    else:
        ws.publish("room", message, opcode)  # everyone but this socket


app = App()
app.ws("/chat", {
    "compression": CompressOptions.DISABLED,
    "max_payload_length": 1024 * 1024,
    "idle_timeout": 30,
    "reset_idle_timeout_on_send": True,
    "max_lifetime": 0,
    "open": chat_open,
    "message": chat_message,
})
app.ws("/flood", {
    "compression": CompressOptions.DISABLED,
    "max_backpressure": 4 * 1024 * 1024,
    "open": fill,
    "drain": flood_drain,
})
# As in socketify's examples: a catch-all WebSocket route beside an HTTP route on "/".
app.ws("/*", {"message": lambda ws, message, opcode: ws.send(message, opcode)})
app.any("/", lambda res, req: res.end("Nothing to see here!"))
app.listen(int(os.environ.get("PORT", "0")),
           lambda config: print("listening on %d" % config.port, flush=True))
app.run()
