"""Issue 4: templates — ``res.render`` on Jinja2, over real sockets.

Rendering, inheritance, autoescape, ``render_string``, async engines, the context helpers,
template errors (log and answer, production and debug), folder resolution, caching and
reloading, and (with strace) that a rendered page leaves in exactly one send syscall.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import jinja2
import pytest
from markupsafe import Markup

from corkweb import App, HTTPError
from corkweb.templating import (
    Jinja2Templates,
    builtin_page,
    fast_template_class,
    template_error_info,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / "templates"

PAGES = {
    "layout.html": """\
        <!doctype html><title>{% block title %}{{ title }}{% endblock %}</title>
        <body>{% block content %}default content{% endblock %}
        <footer>{% block footer %}layout footer{% endblock %}</footer></body>
        """,
    "page.html": """\
        {% extends "layout.html" %}
        {% block title %}Page: {{ super() }}{% endblock %}
        {% block content %}<ul>{% for item in items %}<li>{{ item }}</li>{% endfor %}</ul>
        <p>{{ request.get_method() }} {{ request.get_full_url() }}</p>{% endblock %}
        """,
    "value.html": "[{{ value }}]",
    "plain.txt": "[{{ value }}]",
    "helpers.html": """\
        <a href="{{ url_for('user', id=7) }}">u</a> <link href="{{ static_url('site.css') }}">
        """,
    "broken.html": """\
        <p>line one</p>
        <p>line two</p>
        <p>{% if %}</p>
        """,
    "undefined.html": """\
        <p>fine</p>
        <p>{{ nothing.at_all }}</p>
        """,
    "orphan.html": """\
        {% extends "no-such-layout.html" %}
        """,
    "filters.html": "{{ name | shout }} {{ greeting() }} {{ 'yes' if 4 is even_number }}",
}


def write_templates(folder: Path, pages: dict[str, str] = PAGES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    return write_templates(tmp_path / "templates")


# -- rendering --------------------------------------------------------------------------------


def test_render_answers_html_with_inheritance_and_the_request(serve, templates) -> None:
    app = App(templates=templates)

    @app.get("/page")
    def page(res, req):
        res.render("page.html", title="Hello", items=["a", "b"])

    server = serve(app)
    r = httpx.get(server.url + "/page?x=1")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>Page: Hello</title>" in r.text  # block override calling super()
    assert "<ul><li>a</li><li>b</li></ul>" in r.text
    assert "<p>GET /page?x=1</p>" in r.text  # the request is in every context
    assert "layout footer" in r.text  # a block the child does not override
    assert int(r.headers["content-length"]) == len(r.content)


def test_shared_layout_blocks_title_head_content(serve, templates) -> None:
    (templates / "child.html").write_text(
        '{% extends "base.html" %}{% block title %}Child{% endblock %}'
        '{% block head %}<link rel="stylesheet" href="/x.css">{% endblock %}'
        "{% block content %}<h1>Child page</h1>{% endblock %}"
    )
    app = App(templates=[templates, SHARED])  # the app's own folder, then the shared one

    @app.get("/child")
    def child(res, req):
        res.render("child.html")

    @app.get("/bare")
    def bare(res, req):
        res.render("base.html", title="Only a title")

    server = serve(app)
    text = httpx.get(server.url + "/child").text
    assert text.startswith("<!doctype html>")
    assert "<title>Child</title>" in text and '<link rel="stylesheet" href="/x.css">' in text
    assert "<main>\n    <h1>Child page</h1>\n  </main>" in text
    assert "<title>Only a title</title>" in httpx.get(server.url + "/bare").text


def test_script_in_the_context_comes_out_escaped(serve, templates) -> None:
    app = App(templates=templates)
    attack = "<script>alert('x')</script>"

    @app.get("/html")
    def html(res, req):
        res.render("value.html", value=attack)

    @app.get("/markup")
    def markup(res, req):
        res.render("value.html", value=Markup("<b>trusted</b>"))

    @app.get("/txt")
    def txt(res, req):
        res.render("plain.txt", value="<b>")

    server = serve(app)
    r = httpx.get(server.url + "/html")
    assert r.text == "[&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;]"
    assert "<script>" not in r.text
    assert httpx.get(server.url + "/markup").text == "[<b>trusted</b>]"
    assert httpx.get(server.url + "/txt").text == "[<b>]"  # not an autoescaped extension


def test_status_headers_and_an_earlier_status(serve, templates) -> None:
    app = App(templates=templates)

    @app.get("/created")
    def created(res, req):
        res.render("value.html", status=201, headers={"x-one": "1"}, value="v")

    @app.get("/gone")
    def gone(res, req):
        res.write_status(410).write_header("content-type", "text/html; charset=latin-1")
        res.render("value.html", value="gone")

    @app.get("/name")
    def name(res, req):
        res.render("value.html", name="not the template", value="ok")  # name is positional

    server = serve(app)
    r = httpx.get(server.url + "/created")
    assert (r.status_code, r.headers["x-one"], r.text) == (201, "1", "[v]")
    r = httpx.get(server.url + "/gone")
    assert r.status_code == 410 and r.headers["content-type"] == "text/html; charset=latin-1"
    assert r.headers.get_list("content-type") == ["text/html; charset=latin-1"]
    assert httpx.get(server.url + "/name").text == "[ok]"


def test_render_string_is_escaped_and_compiled_once(serve, templates) -> None:
    app = App(templates=templates)
    source = "<i>{{ who }}</i> {{ request.get_url() }}"

    @app.get("/s")
    def s(res, req):
        res.render_string(source, who="<you>", status=202)

    server = serve(app)
    r = httpx.get(server.url + "/s")
    assert (r.status_code, r.text) == (202, "<i>&lt;you&gt;</i> /s")
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    engine = app._engine()
    assert engine.from_string(source) is engine.from_string(source)


def test_async_handlers_await_render_with_a_sync_engine(serve, templates) -> None:
    app = App(templates=templates)

    @app.get("/a")
    async def a(res, req):
        assert (await res.render("value.html", value="awaited")) is res

    @app.get("/b")
    async def b(res, req):
        res.render_string("{{ 1 + 1 }}")  # a sync engine needs no await

    server = serve(app)
    assert httpx.get(server.url + "/a").text == "[awaited]"
    assert httpx.get(server.url + "/b").text == "2"


def test_async_jinja_environment(serve, templates) -> None:
    app = App(templates=None)
    app.template(Jinja2Templates(templates, enable_async=True))

    async def rows():
        for i in range(3):
            yield i

    (templates / "async.html").write_text("{% for r in rows %}{{ r }}{% endfor %}{{ x }}")

    @app.get("/await")
    async def awaited(res, req):
        await res.render("async.html", rows=rows(), x="<")

    @app.get("/return")
    def returned(res, req):
        return res.render("async.html", rows=rows(), x="!")  # the server runs the coroutine

    @app.get("/string")
    async def string(res, req):
        await res.render_string("{{ url_for('string') }}")

    app.get("/named", string, name="string")
    server = serve(app)
    assert httpx.get(server.url + "/await").text == "012&lt;"
    assert httpx.get(server.url + "/return").text == "012!"
    assert httpx.get(server.url + "/string").text == "/named"


# -- corkweb's faster template class: same output as Jinja2's ----------------------------------------------------


class Html:
    def __html__(self) -> str:
        return "<em>html</em>"


class Text(str):
    pass


EQUIVALENCE = [
    ("{{ v }}", {"v": "<a href='x'>&\"</a>"}),
    ("{{ v }}", {"v": 42}),
    ("{{ v }}", {"v": 1.5}),
    ("{{ v }}", {"v": None}),
    ("{{ v }}", {"v": Markup("<b>&amp;</b>")}),
    ("{{ v }}", {"v": Html()}),
    ("{{ v }}", {"v": Text("<sub>")}),
    ("{{ v }}", {"v": ["<", 1]}),
    ("{{ missing }}|{{ missing is defined }}|{{ d.nope }}", {"d": {}}),
    ("{{ v|e }}{{ v|safe }}{{ v|upper }}", {"v": "<x>"}),
    ("{{ a ~ b }}{{ a + b }}", {"a": "<", "b": Markup("<i>")}),
    ("{% set s %}<p>{{ v }}</p>{% endset %}{{ s }}{{ s|length }}", {"v": "<"}),
    ("{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(v) }}{{ m(v)|length }}", {"v": "&"}),
    ("{% filter upper %}{{ v }}{% endfilter %}", {"v": "<a>"}),
    ("{% autoescape false %}{{ v }}{% endautoescape %}{{ v }}", {"v": "<a>"}),
    ("{% for k, x in d.items() %}{{ k }}={{ x }};{% endfor %}", {"d": {"<": ">", "'": '"'}}),
]


@pytest.mark.parametrize(("source", "context"), EQUIVALENCE)
def test_fast_escaping_renders_exactly_like_stock_jinja(source: str, context: dict) -> None:
    stock = jinja2.Environment(autoescape=True)
    fast = Jinja2Templates([], autoescape=True)
    template = fast.env.from_string(source)
    assert type(template) is fast_template_class()
    assert template.root_render_func.__globals__["escape"] is not jinja2.runtime.escape
    assert template.render(context) == stock.from_string(source).render(context)


def test_inheritance_include_and_import_render_exactly_like_stock_jinja() -> None:
    pages = {
        "base.html": "<t>{% block t %}{{ v }}{% endblock %}</t>{% include 'inc.html' %}",
        "inc.html": "[{{ v }}{% set local = '<l>' %}{{ local }}]",
        "macros.html": "{% macro m(x) %}<m>{{ x }}{{ v }}</m>{% endmacro %}",
        "child.html": "{% extends 'base.html' %}{% import 'macros.html' as mm with context %}"
                      "{% from 'macros.html' import m %}"
                      "{% block t %}{{ super() }}|{{ mm.m(v) }}|{{ m('&') }}{% endblock %}",
    }
    stock = jinja2.Environment(loader=jinja2.DictLoader(pages), autoescape=True)
    fast = Jinja2Templates([], autoescape=True)
    fast.env.loader = jinja2.DictLoader(pages)
    for value in ("<v>", Markup("<b>"), 7):
        expected = stock.get_template("child.html").render(v=value)
        assert fast.render("child.html", v=value) == expected


def test_the_render_context_sees_live_and_per_template_globals() -> None:
    engine = Jinja2Templates([], autoescape=True)
    engine.env.loader = jinja2.DictLoader({"g.html": "{{ a }}-{{ b }}-{{ c }}"})
    engine.env.globals["a"] = "<1>"
    plain = engine.env.get_template("g.html")
    assert plain.render() == "&lt;1&gt;--"
    engine.env.globals["b"] = 2  # added after the template was loaded: still seen
    assert plain.render({"c": 3}) == "&lt;1&gt;-2-3"
    own = engine.env.from_string("{{ a }}-{{ b }}-{{ c }}", globals={"c": "own"})
    assert own.render() == "&lt;1&gt;-2-own"
    assert own.render({"c": "ctx"}) == "&lt;1&gt;-2-ctx"


def test_fast_escaping_keeps_jinja_async_mode_equal() -> None:
    import asyncio

    stock = jinja2.Environment(autoescape=True, enable_async=True)
    fast = Jinja2Templates([], autoescape=True, enable_async=True)
    source, context = "{% for x in v %}{{ x }}{% endfor %}", {"v": ["<", Markup("<b>"), 3]}

    async def both() -> tuple[str, str]:
        return (await fast.env.from_string(source).render_async(context),
                await stock.from_string(source).render_async(context))

    mine, theirs = asyncio.run(both())
    assert mine == theirs == "&lt;<b>3"


# -- the context helpers and the environment ----------------------------------------------------


def test_url_for_and_static_url_in_templates(serve, templates, tmp_path) -> None:
    public = tmp_path / "public"
    public.mkdir()
    (public / "site.css").write_text("body{}")
    app = App(templates=templates)
    app.static("/assets", public)

    @app.get("/users/:id<int>", name="user")
    def user(res, req):
        res.end("user")

    @app.get("/helpers")
    def helpers(res, req):
        res.render("helpers.html")

    server = serve(app)
    text = httpx.get(server.url + "/helpers").text
    assert '<a href="/users/7">' in text and '<link href="/assets/site.css">' in text
    assert httpx.get(server.url + "/assets/site.css").text == "body{}"
    assert app.static_url("/a b/c.css?v=1") == "/assets/a%20b/c.css?v=1"


def test_static_url_without_a_static_mount_raises() -> None:
    app = App(templates=None)
    with pytest.raises(LookupError, match="app.static"):
        app.static_url("x.css")


def test_template_env_takes_filters_globals_and_tests(serve, templates) -> None:
    app = App(templates=templates)
    env = app.template_env
    assert isinstance(env, jinja2.Environment) and env is app.template_env
    env.filters["shout"] = lambda s: s.upper() + "!"
    env.globals["greeting"] = lambda: "hi"
    env.tests["even_number"] = lambda n: n % 2 == 0

    @app.get("/f")
    def f(res, req):
        res.render("filters.html", name="<bob>")

    server = serve(app)
    assert httpx.get(server.url + "/f").text == "&lt;BOB&gt;! hi yes"


def test_a_jinja_environment_or_any_engine_can_be_plugged_in(serve, templates) -> None:
    env = jinja2.Environment(loader=jinja2.DictLoader({"x.html": "<{{ v }}>"}), autoescape=True)
    app = App(templates=None)
    app.template(env)
    assert app.template_env is env

    @app.get("/x")
    def x(res, req):
        res.render("x.html", v="&")

    class Engine:
        def __init__(self) -> None:
            self.seen: list[tuple[str, list[str]]] = []

        def render(self, name: str, **context: Any) -> str:
            self.seen.append((name, sorted(context)))
            return f"{name}:{context['v']}:{context['url_for']('other')}"

    engine = Engine()
    other = App(templates=None)
    other.template(engine)

    @other.get("/o", name="other")
    def o(res, req):
        res.render("any-name", v=1)

    @other.get("/s")
    def s(res, req):
        res.render_string("no render_string on this engine")

    with pytest.raises(TypeError, match="render"):
        other.template(object())
    with pytest.raises(RuntimeError, match="no Jinja2 environment"):
        other.template_env  # noqa: B018
    assert httpx.get(serve(app).url + "/x").text == "<&amp;>"
    server = serve(other)
    assert httpx.get(server.url + "/o").text == "any-name:1:/o"
    assert engine.seen == [("any-name", ["request", "static_url", "url_for", "v"])]
    assert httpx.get(server.url + "/s").status_code == 500


# -- errors -----------------------------------------------------------------------------------


def error_app(templates: Path, debug: bool = False) -> App:
    app = App(templates=templates, debug=debug)
    def renders(name: str) -> Any:
        return lambda res, req: res.render(f"{name}.html")

    for name in ("broken", "undefined", "orphan", "nope"):
        app.get(f"/{name}", renders(name))
    return app


def test_template_errors_are_logged_with_name_and_line_and_answer_500(
        serve, templates, caplog) -> None:
    server = serve(error_app(templates))
    caplog.set_level(logging.ERROR, logger="corkweb.error")
    expected = {
        "broken": f"'{templates / 'broken.html'}' line 3: TemplateSyntaxError",
        "undefined": f"'{templates / 'undefined.html'}' line 2: UndefinedError",
        "orphan": f"template 'no-such-layout.html' not found (needed by "
                  f"'{templates / 'orphan.html'}' line 1)",
        "nope": "template 'nope.html' not found (handler for GET /nope)",
    }
    for name, logged in expected.items():
        caplog.clear()
        r = httpx.get(server.url + f"/{name}", headers={"accept": "text/html"})
        assert r.status_code == 500
        assert "<h1>500 Internal Server Error</h1>" in r.text
        assert "Traceback" not in r.text and "line two" not in r.text  # production: no detail
        (record,) = [rec for rec in caplog.records if rec.message.startswith("template error")]
        assert logged in record.message, record.message
        assert record.exc_info is not None  # the traceback is logged too


def test_debug_mode_shows_the_template_source_line(serve, templates) -> None:
    server = serve(error_app(templates, debug=True))
    r = httpx.get(server.url + "/broken", headers={"accept": "text/html"})
    assert r.status_code == 500 and "debug mode" in r.text
    assert '<tr class="error"><td class="n">3</td><td>&lt;p&gt;{% if %}&lt;/p&gt;</td></tr>' \
        in r.text
    assert "line two" in r.text and "Traceback" in r.text
    r = httpx.get(server.url + "/undefined", headers={"accept": "text/html"})
    assert '<td class="n">2</td><td>&lt;p&gt;{{ nothing.at_all }}&lt;/p&gt;</td>' in r.text
    r = httpx.get(server.url + "/undefined", headers={"accept": "application/json"})
    body = r.json()
    assert body["template"]["line"] == 2 and "UndefinedError" in body["template"]["error"]
    r = httpx.get(server.url + "/nope")  # plain text
    assert "template error: template 'nope.html' not found" in r.text


def test_template_error_info_ignores_other_errors() -> None:
    assert template_error_info(ValueError("x")) is None
    assert template_error_info(HTTPError(404)) is None


def test_builtin_error_pages_are_package_templates() -> None:
    page = builtin_page("error.html", status=404, phrase="Not Found", message="<no>")
    assert "<h1>404 Not Found</h1>" in page and "&lt;no&gt;" in page
    package = Path(__import__("corkweb").__file__).parent / "templates"
    assert (package / "error.html").is_file() and (package / "debug.html").is_file()


def test_render_without_templates_is_a_clear_500(serve, caplog) -> None:
    app = App(templates=None)

    @app.get("/")
    def home(res, req):
        res.render("x.html")

    with pytest.raises(RuntimeError, match="no templates folder"):
        app.template_env  # noqa: B018
    server = serve(app)
    caplog.set_level(logging.ERROR, logger="corkweb.error")
    assert httpx.get(server.url + "/").status_code == 500
    assert "no template engine" in caplog.text


# -- where the templates are, caching, reloading -------------------------------------------------


def test_default_templates_folder_is_found_next_to_the_creating_module(
        tmp_path, monkeypatch) -> None:
    project = tmp_path / "project"
    write_templates(project / "templates", {"hi.html": "hi {{ who }}"})
    (project / "made_here.py").write_text("from corkweb import App\napp = App()\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = importlib.util.spec_from_file_location("made_here", project / "made_here.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.app._engine().render("hi.html", who="there") == "hi there"

    assert App()._engine() is None  # no templates/ next to this test, nor in the cwd
    assert App(templates=None)._engine() is None
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        App(templates="no-such-folder")
    (elsewhere / "templates").mkdir()
    assert App()._templates_dir == [str(elsewhere / "templates")]  # the cwd is the fallback


def test_production_caches_and_debug_reloads(serve, tmp_path) -> None:
    folder = write_templates(tmp_path / "t", {"v.html": "one"})
    prod, debug = App(templates=folder), App(templates=folder, debug=True)
    for app in (prod, debug):
        app.get("/", lambda res, req: res.render("v.html"))
    prod_server, debug_server = serve(prod), serve(debug)
    assert httpx.get(prod_server.url + "/").text == "one"
    assert httpx.get(debug_server.url + "/").text == "one"
    (folder / "v.html").write_text("two")
    later = os.stat(folder / "v.html").st_mtime + 10  # a changed mtime, whatever the clock
    os.utime(folder / "v.html", (later, later))
    assert httpx.get(prod_server.url + "/").text == "one"  # compiled once, never re-read
    assert httpx.get(debug_server.url + "/").text == "two"  # auto-reload in debug mode
    prod._engine().clear_cache()
    assert httpx.get(prod_server.url + "/").text == "two"


# -- one send per rendered page (strace) --------------------------------------------------------


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed")
def test_a_rendered_page_is_one_send_syscall(tmp_path) -> None:
    from strace_helpers import exchange, sends_per_connection, under_strace

    trace = tmp_path / "trace.txt"
    command = [sys.executable, str(REPO / "tests" / "apps" / "templates_app.py")]
    with under_strace(command, trace, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the readiness signal: printed once listening
        assert line.startswith("ready "), line
        port = int(line.split()[1])
        (page,) = exchange(port, b"GET /page HTTP/1.1\r\nHost: a\r\n\r\n", 1)
        (after,) = exchange(port, b"GET /async HTTP/1.1\r\nHost: a\r\n\r\n", 1)
        (failed,) = exchange(port, b"GET /missing HTTP/1.1\r\nHost: a\r\n"
                                   b"Accept: text/html\r\n\r\n", 1)
    assert page.status == 200 and b"&lt;script&gt;alert(1)&lt;/script&gt;" in page.body
    assert after.status == 200 and after.header("x-after") == "await"
    assert failed.status == 500 and b"<h1>500" in failed.body
    assert len(page.body) > 200  # a whole page, not a few bytes
    assert sends_per_connection(trace.read_text()) == [1, 1, 1]
