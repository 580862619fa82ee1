"""The ``/chat`` WebSocket: every message is published to everyone in the room."""

from __future__ import annotations

from corkweb import App

ROOM = "chat"


def register(app: App) -> None:
    def on_open(ws):
        ws.subscribe(ROOM)

    def on_message(ws, message, opcode):
        # app.publish reaches every subscriber, the sender included; the frame is built once.
        app.publish(ROOM, message, opcode)

    def on_close(ws, code, message):
        pass  # subscriptions end with the socket

    app.ws("/chat/ws", {
        "max_payload_length": 64 * 1024,
        "idle_timeout": 120,
        "open": on_open,
        "message": on_message,
        "close": on_close,
    })
