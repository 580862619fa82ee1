"""Server-Sent Events: a clock that streams one event per second, resumes from
``Last-Event-ID``, and a chat-like feed fed by POSTs.

Run it:  python examples/sse/app.py   (then open http://127.0.0.1:3000/)
"""

import asyncio
import os

from corkweb import App, Event, EventStream, stream_events

PAGE = """<!doctype html>
<title>SSE</title>
<pre id="log"></pre>
<script>
  const log = document.getElementById("log");
  const source = new EventSource("/clock");
  source.addEventListener("tick", (e) => {
    log.textContent += e.lastEventId + " " + e.data + "\\n";
  });
</script>
"""


def create_app(interval: float = 1.0) -> App:
    app = App(templates=None)
    listeners: set[asyncio.Queue] = set()

    @app.get("/")
    def home(res, req):
        res.send(PAGE, content_type="text/html; charset=utf-8")

    async def clock(start: int):
        n = start
        while True:
            yield Event({"tick": n}, event="tick", id=str(n))
            n += 1
            await asyncio.sleep(interval)

    @app.get("/clock")
    def clock_route(res, req):
        last = req.get_header("last-event-id")
        start = int(last) + 1 if last and last.isdigit() else 0
        # retry: tell browsers to reconnect after 3 s; the source is closed when they leave.
        return stream_events(res, req, clock(start), retry=3000)

    @app.get("/feed")
    async def feed(res, req):
        queue: asyncio.Queue = asyncio.Queue()
        listeners.add(queue)
        try:
            async with EventStream(res, req, ping=15) as stream:
                while not stream.closed:
                    waiter = asyncio.ensure_future(queue.get())
                    closed = asyncio.ensure_future(stream.wait_closed())
                    done, _ = await asyncio.wait({waiter, closed},
                                                 return_when=asyncio.FIRST_COMPLETED)
                    closed.cancel()
                    if waiter not in done:
                        waiter.cancel()
                        break
                    await stream.send(waiter.result(), event="message")
        finally:
            listeners.discard(queue)

    @app.post("/feed")
    async def post(res, req):
        text = await res.get_text()
        for queue in listeners:
            queue.put_nowait(text)
        res.end({"delivered": len(listeners)})

    return app


app = create_app()

if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "3000")))
