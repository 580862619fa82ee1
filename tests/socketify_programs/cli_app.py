# ruff: noqa: UP031  (socketify's examples format with %)
"""For ``python -m corkweb cli_app:run --ws cli_app:websocket``: the command makes the App."""

from socketify import App, OpCode


def run(app: App):
    app.get("/", lambda res, req: res.end("Hello from the command line"))


websocket = {
    "open": lambda ws: ws.send("Hello World!", OpCode.TEXT),
    "message": lambda ws, message, opcode: ws.send(message, opcode),
}
