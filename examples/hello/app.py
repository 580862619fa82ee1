"""Hello, World! — the smallest corkweb app.

Run it:  python examples/hello/app.py   (then open http://127.0.0.1:3000/)
"""

import os

from corkweb import App

app = App()


@app.get("/")
def home(res, req):
    res.end("Hello, World!")


@app.get("/json")
def json_(res, req):
    res.end({"message": "Hello, World!"})


@app.get("/user/:id")
def user(res, req):
    res.end("User " + req.get_parameter("id"))


if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "3000")))
