# ruff: noqa: UP031  (socketify's examples format with %)
"""Router and basics, middleware chains, async handlers and uploads, socketify style."""

import asyncio
import json
import os

from socketify import App, MiddlewareRouter, middleware

app = App()
app.json_serializer(json)  # dumps returns str here: corkweb encodes it


def home(res, req):
    res.end("Hello :)")


def user(res, req):
    try:
        if int(req.get_parameter(0)) == 1:
            return res.end("Hello user 1!")
    finally:
        req.set_yield(1)  # anything else falls through to the catch-all


def not_found(res, req):
    res.write_status(404).end("Not Found")


def header_then_status(res, req):
    # socketify ignores a status written after a header (its issue #144); corkweb does not.
    res.write_header("x-order", "header-first")
    res.write_status(201)
    res.end("created")


def in_parts(res, req):
    res.write("I can")
    res.write(" send ")
    res.end("in parts!")


def fails_after_write(res, req):
    res.write("partial")
    raise RuntimeError("broken after write")


async def fails_after_flush(res, req):
    res.write("partial")
    await asyncio.sleep(0)  # the head and "partial" leave here
    raise RuntimeError("broken after the head left")


async def later(res, delay):
    await asyncio.sleep(delay)
    res.cork_end("Hello after %s" % delay)


def delayed(res, req):
    delay = float(req.get_query("delay") or 0)
    res.grab_aborted_handler()
    res.run_async(later(res, delay))


async def forgets(res):
    await asyncio.sleep(0)


def forgetful(res, req):
    res.run_async(forgets(res))


def loop_and_app(res, req):
    fut = res.app.loop.create_future()
    fut.set_result("future")
    res.end({"loop": fut.result(), "proxied": res.get_proxied_remote_address(),
             "remote": res.get_remote_address()})


def report(res, req):
    res.app.trigger_error(ValueError("reported"), res, req)


@app.on_error
def on_error(error, res, req):
    if res is not None:
        res.write_status(500).end("handled: %s" % error)


async def get_user(authorization):
    await asyncio.sleep(0)
    return {"greeting": "Hello"} if authorization else None


async def auth(res, req, data=None):
    user_data = await get_user(req.get_header("authorization"))
    if not user_data:
        res.write_status(403).end("not authorized")
        return False
    return user_data


def shout(res, req, data=None):
    data["greeting"] = data["greeting"].upper()
    return data


def sync_auth(res, req, data=None):
    if not req.get_header("authorization"):
        res.write_status(403).end("not authorized")
        return False
    return {"greeting": "hi"}


def greet(res, req, data=None):
    res.cork_end(data["greeting"])


def upload_stream(res, req):
    sizes = []

    def on_data(res, chunk, is_end):
        sizes.append(len(chunk))
        if is_end:
            res.cork_end("got %d bytes" % sum(sizes))

    res.on_data(on_data)


async def upload_whole(res, req):
    data = await res.get_data()
    res.cork_end({"getvalue": len(data.getvalue()), "read": data.read(3).decode(),
                  "bytes": len(data)})


async def upload_json(res, req):
    people = await res.get_json()
    res.cork_end({"first": people[0]["name"]})


async def upload_form(res, req):
    form = await res.get_form_urlencoded()
    res.cork_end(form)


async def upload_text(res, req):
    res.cork_end("text: " + await res.get_text())


app.get("/", home)
app.get("/user/:id", user)
app.get("/status", header_then_status)
app.get("/parts", in_parts)
app.get("/fails_after_write", fails_after_write)
app.get("/fails_after_flush", fails_after_flush)
app.get("/delayed", delayed)
app.get("/forgetful", forgetful)
app.get("/app", loop_and_app)
app.get("/report", report)
app.get("/mw", middleware(auth, shout, greet))
app.get("/mw_sync", middleware(sync_auth, greet))
router = MiddlewareRouter(app, auth)
router.get("/router", greet)
router.get("/router_more", middleware(shout, greet))  # continues from auth's data
app.post("/stream", upload_stream)
app.post("/whole", upload_whole)
app.post("/json", upload_json)
app.post("/form", upload_form)
app.post("/text", upload_text)
app.any("/*", not_found)

app.listen(int(os.environ.get("PORT", "0")),
           lambda config: print("listening on %d" % config.port, flush=True))
app.run()
