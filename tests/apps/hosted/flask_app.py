"""A Flask application, served through WSGI."""

from __future__ import annotations

import threading

from flask import Flask, Response, jsonify, request, stream_with_context

app = Flask(__name__)


@app.get("/plaintext")
def plaintext() -> Response:
    return Response("Hello, World!", mimetype="text/plain")


@app.get("/json")
def json() -> Response:
    return jsonify(message="Hello, World!")


@app.post("/echo")
def echo() -> Response:
    data = request.get_data()
    return jsonify(size=len(data), first=data[:5].decode("latin-1"))


@app.get("/info")
def info() -> Response:
    return jsonify(path=request.path, script_root=request.script_root, remote=request.remote_addr,
                   scheme=request.scheme, thread=threading.current_thread().name,
                   query=request.args.get("q"))


@app.get("/stream")
def stream() -> Response:
    count = int(request.args.get("n", "3"))

    def generate():  # type: ignore[no-untyped-def]
        for i in range(count):
            yield f"part {i}\n"

    return Response(stream_with_context(generate()), mimetype="text/plain")


@app.get("/boom")
def boom() -> Response:
    raise RuntimeError("flask boom")
