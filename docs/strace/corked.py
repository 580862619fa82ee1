"""The response of docs/corking.md, from corkweb: ``python corked.py PORT``."""

import sys

from corkweb import App

app = App(templates=None)


@app.get("/")
def home(res, req):
    res.write_status(200)
    res.write_header("x-one", "1")
    res.write_header("x-two", "2")
    res.write_header("x-three", "3")
    res.set_cookie("session", "abc", httponly=True)
    res.end("Hello, World!")


app.run(port=int(sys.argv[1]))
