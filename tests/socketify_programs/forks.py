# ruff: noqa: UP031  (socketify's examples format with %)
"""socketify's multi-core pattern: fork, then every process listens on the same port."""

import os
import signal

from socketify import App

PORT = int(os.environ["PORT"])
children = []


def run_app():
    app = App()
    app.get("/", lambda res, req: res.end(str(os.getpid())))
    app.listen(PORT, lambda config: print("PID %d listening on %d" % (os.getpid(),
                                                                     config.port), flush=True))
    app.run()


for _ in range(2):
    pid = os.fork()
    if pid == 0:
        # As in socketify's example, nothing stops the child here once run_app() returns:
        # it is the signal that ends the process (corkweb raises SystemExit after draining).
        run_app()
    else:
        children.append(pid)

run_app()
for pid in children:
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)
print("children stopped", flush=True)
