"""A real browser (Debian's headless Chromium, driven by Playwright) on corkweb pages.

It loads a rendered page (layout, stylesheet, escaping, a link) and runs the chat: two pages,
a message typed into one appears in the other. The browser is the system's ``chromium``
(``apt-get install chromium``; Playwright never downloads one here); without it, or without
the ``playwright`` package, these tests are skipped.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from browser_helpers import chromium, needs_browser
from example_loader import EXAMPLES, load_example

from corkweb.testing import TestServer

pytestmark = needs_browser

TIMEOUT_MS = 10_000

# Counts the page's WebSockets that are open, whatever the page's own code names them: the test
# waits on it instead of sleeping. On the server, the open handler (which subscribes) has run
# before the 101 response leaves, so an open socket in the browser is a subscribed one.
COUNT_OPEN_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__openSockets = 0;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("open", () => { window.__openSockets += 1; });
    }
  };
})();
"""


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def context(browser):
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(COUNT_OPEN_SOCKETS)
    try:
        yield context
    finally:
        context.close()


def test_rendered_page_with_layout_stylesheet_and_links(context) -> None:
    from playwright.sync_api import expect

    with TestServer(load_example("pages").create_app()) as server:
        page = context.new_page()
        response = page.goto(server.url + "/")
        assert response is not None and response.status == 200
        expect(page).to_have_title("Home · corkweb pages")
        heading = page.locator("h1#title")
        expect(heading).to_have_text("Home")
        # the stylesheet from /static was fetched and applied
        expect(heading).to_have_css("color", "rgb(138, 75, 8)")
        # escaped by the template, shown as text by the browser
        expect(page.locator("#posts")).to_contain_text("Escaping <b>matters</b>")
        page.get_by_role("link", name="Why corking").click()
        expect(page).to_have_url(server.url + "/posts/corking")
        expect(page.locator("article")).to_have_text("One write per response.")
        page.goto(server.url + "/hello?name=%3Cscript%3Ealert(1)%3C/script%3E")
        expect(page.locator("#greeting")).to_have_text("Hello, <script>alert(1)</script>!")


def chat_round_trip(context, url: str) -> None:
    """Open the chat page twice; what one page sends appears in the other."""
    from playwright.sync_api import expect

    alice, bob = context.new_page(), context.new_page()
    for page in (alice, bob):
        page.goto(url)
        page.wait_for_function("window.__openSockets > 0")
    message = "hello from alice, corked"
    box = alice.locator("input[type=text], input:not([type]), textarea").first
    box.fill(message)
    box.press("Enter")
    expect(bob.get_by_text(message)).to_be_visible()
    reply = "bob got it"
    box = bob.locator("input[type=text], input:not([type]), textarea").first
    box.fill(reply)
    box.press("Enter")
    expect(alice.get_by_text(reply)).to_be_visible()


@pytest.mark.skipif(not (EXAMPLES / "chat" / "app.py").exists(),
                    reason="examples/chat is not written yet")
def test_chat_example_message_reaches_the_other_page(context) -> None:
    from playwright.sync_api import expect

    module = load_example("chat")
    app = module.create_app() if hasattr(module, "create_app") else module.app
    with TestServer(app) as server:
        pages = {}
        for name in ("alice", "bob"):
            page = pages[name] = context.new_page()
            page.goto(server.url + "/")
            join = page.locator("#join")
            join.locator("input[name=name]").fill(name)
            join.locator("input[name=room]").fill("cellar")
            join.locator("button").click()
            page.wait_for_function("window.__openSockets > 0")
            expect(page.locator("#log")).to_contain_text("you joined cellar")
        alice, bob = pages["alice"], pages["bob"]
        expect(alice.locator("#log")).to_contain_text("bob joined")

        text = alice.locator("#say input[name=text]")
        expect(text).to_be_enabled()
        text.fill("the wine is <b>corked</b>")
        text.press("Enter")
        # shown in the other page, as text (the page never uses innerHTML)
        expect(bob.locator("#log")).to_contain_text("alice: the wine is <b>corked</b>")
        expect(alice.locator("#log")).to_contain_text("alice: the wine is <b>corked</b>")

        reply = bob.locator("#say input[name=text]")
        reply.fill("pour another")
        reply.press("Enter")
        expect(alice.locator("#log")).to_contain_text("bob: pour another")
        bob.close()
        expect(alice.locator("#log")).to_contain_text("bob left")


@pytest.mark.skipif(importlib.util.find_spec("cookiecutter") is None,
                    reason="the cookiecutter package is not installed")
def test_scaffold_chat_page(context, tmp_path: Path) -> None:
    from cookiecutter.main import cookiecutter

    project = Path(cookiecutter(
        str(EXAMPLES.parent / "cookiecutter"), no_input=True, output_dir=str(tmp_path),
        extra_context={"project_name": "Browser Chat", "with_websocket": "yes",
                       "with_templates": "yes"}))
    sys.path.insert(0, str(project))
    try:
        from browser_chat import create_app
    finally:
        sys.path.remove(str(project))
    with TestServer(create_app()) as server:
        chat_round_trip(context, server.url + "/chat")
