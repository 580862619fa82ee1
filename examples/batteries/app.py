"""Batteries: static files (with a precompressed sibling), CORS for an API used from another
origin, gzip/brotli compression of JSON, and a signed-cookie session.

Run it:  python examples/batteries/app.py   (then open http://127.0.0.1:3000/)
Set SECRET_KEY in production; the default below is for trying it out only.
"""

import os
from pathlib import Path

from corkweb import CORS, App, Compression, Sessions, get_session

HERE = Path(__file__).parent
SECRET = os.environ.get("SECRET_KEY", "dev-only-secret-change-me-please")


def create_app(secret: str = SECRET) -> App:
    app = App(templates=None)
    app.use(Compression(minimum_size=500))
    app.use(Sessions(secret, secure=False))  # secure=True behind HTTPS

    # /static/app.js is served from app.js.gz to clients that accept gzip.
    app.static("/static", HERE / "public", max_age=3600)

    cors = CORS(["http://localhost:5173"], allow_credentials=True,
                allow_headers=["content-type"])
    api = app.router("/api", cors)
    api.options("/*", cors.preflight)

    @app.get("/")
    async def home(res, req):
        await res.sendfile(HERE / "public" / "index.html")

    @api.get("/visits")
    def visits(res, req):
        session = get_session(req)
        session["visits"] = session.get("visits", 0) + 1
        res.end({"visits": session["visits"]})

    @api.get("/report")
    def report(res, req):
        # A large JSON body: compressed when the client accepts it.
        res.end({"rows": [{"id": i, "name": f"row {i}"} for i in range(200)]})

    return app


app = create_app()

if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "3000")))
