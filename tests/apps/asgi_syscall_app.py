"""Raw ASGI app for tests/test_asgi_syscalls.py, served with ``corkweb run --interface asgi``
under strace: each route sends its messages within one step, or across an await."""

import asyncio


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/headers":
        await send({"type": "http.response.start", "status": 201, "headers": [
            (b"content-type", b"text/plain"), (b"x-one", b"1"), (b"x-two", b"2"),
            (b"set-cookie", b"session=abc; HttpOnly")]})
        await send({"type": "http.response.body", "body": b"headers"})
    elif path == "/parts":
        # start + three body parts (chunked) + the end, all in one step: one write
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one ", b"two ", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/after-await":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-after", b"await")]})
        await asyncio.sleep(0.01)  # start is recorded, not written: still one write
        await send({"type": "http.response.body", "body": b"async"})
    else:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"Hello, World!"})
