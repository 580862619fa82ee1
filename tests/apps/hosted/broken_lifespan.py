"""A raw ASGI app whose start-up fails: ``corkweb run`` must log it and exit non-zero."""


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.failed", "message": "no database"})
        return
    raise AssertionError("never serves")


async def raising(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        raise ConnectionRefusedError("database at 127.0.0.1:1 refused")
