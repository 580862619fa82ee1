"""App for the background-task shutdown test: ``corkweb run background_app:app``."""

import asyncio

from corkweb import App

app = App(templates=None)


async def report(seconds: float) -> None:
    print("background task started", flush=True)
    await asyncio.sleep(seconds)  # the work; the test stops the server meanwhile
    print("background task finished", flush=True)


@app.get("/queue")
def queue(res, req):
    res.background(report, float(req.get_query("s") or 0.5)).end("queued")
