"""App for the metrics tests: ``corkweb run metrics_app:app --workers 2``."""

import os

from corkweb import App, Metrics

app = App(templates=None)
Metrics().install(app)


@app.get("/users/:id")
def user(res, req):
    res.end(str(os.getpid()))
