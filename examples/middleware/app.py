"""Middleware: a timing middleware on every route, token authentication on a route group.

Run it:  python examples/middleware/app.py

    curl -i http://127.0.0.1:3000/                                  # public, with server-timing
    curl -i http://127.0.0.1:3000/api/me                            # 401
    curl -i -H 'authorization: Bearer alice-token' http://127.0.0.1:3000/api/me
"""

import logging
import os
import time

from corkweb import App

log = logging.getLogger("example.timing")

# A real app would look tokens up in a database or verify a signed token.
TOKENS = {"alice-token": {"name": "alice", "admin": True}, "bob-token": {"name": "bob"}}


def timing(res, req, data):
    """Add ``server-timing`` to every response and log the duration when it is sent.

    ``before_head`` runs just before the head is written, so the header lands in the same
    write as the body (corked); ``on_finish`` runs once the response is complete.
    """
    start = time.perf_counter()

    def add_header(res):
        res.write_header("server-timing", f"app;dur={(time.perf_counter() - start) * 1000:.3f}")

    def log_it(res):
        log.info("%s %s -> %d in %.3f ms", req.get_method(), req.get_url(), res.status,
                 (time.perf_counter() - start) * 1000)

    res.before_head(add_header)
    res.on_finish(log_it)
    return True  # a truthy value lets the chain go on


def auth(res, req, data):
    """Answer 401 unless the request carries a known bearer token; pass the user on."""
    scheme, _, token = (req.get_header("authorization") or "").partition(" ")
    user = TOKENS.get(token) if scheme.lower() == "bearer" else None
    if user is None:
        res.write_status(401).write_header("www-authenticate", "Bearer").end(
            {"error": "a valid bearer token is required"})
        return None  # falsy: the chain stops here, the middleware has answered
    return user  # the next middleware, or the handler's third argument


async def admin_only(res, req, user):
    """An async middleware mixes with sync ones; this one needs what ``auth`` returned."""
    if not user.get("admin"):
        res.write_status(403).end({"error": "admins only"})
        return None
    return user


def create_app() -> App:
    app = App(templates=None)
    app.use(timing)  # every route, registered before or after this line

    @app.get("/")
    def home(res, req):
        res.end("public page")

    api = app.router("/api", auth)  # every route of the group goes through auth

    @api.get("/me")
    def me(res, req, user):  # a third parameter receives the middleware's data
        res.end({"name": user["name"]})

    admin = api.router("/admin", admin_only)  # groups nest: auth, then admin_only

    @admin.get("/stats")
    def stats(res, req, user):
        res.end({"users": len(TOKENS), "asked_by": user["name"]})

    return app


app = create_app()

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "3000")))
