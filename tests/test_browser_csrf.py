"""CSRF in a real browser (headless Chromium through Playwright): the page's own form posts,
a form on another site that posts to it is refused with 403.

Two origins on one machine: the app at ``http://127.0.0.1:<port>`` and the "attacker" at
``http://localhost:<other port>`` (another host, so another site for the browser). Skipped
without chromium or playwright, like tests/test_browser.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from browser_helpers import chromium, needs_browser

from corkweb import CSRF, App
from corkweb.testing import TestServer

pytestmark = needs_browser

BANK_PAGE = """<!doctype html><title>bank</title>
<form id="f" method="post" action="/transfer">{{ csrf_input() }}
<input name="amount" value="10"><button id="send">Send</button></form>"""


def bank(tmp_path: Path, transfers: list[str]) -> App:
    (tmp_path / "bank.html").write_text(BANK_PAGE)
    app = App(templates=tmp_path)
    CSRF("b" * 32, secure=False).install(app)

    @app.get("/")
    def page(res: Any, req: Any) -> None:
        res.render("bank.html")

    @app.post("/transfer")
    async def transfer(res: Any, req: Any) -> None:
        amount = (await res.get_form_urlencoded())["amount"]
        transfers.append(amount)
        res.end(f"transferred {amount}")

    return app


def attacker(target: str) -> App:
    app = App(templates=None)

    @app.get("/")
    def page(res: Any, req: Any) -> None:
        res.write_header("content-type", "text/html").end(
            f'<!doctype html><form id="f" method="post" action="{target}/transfer">'
            '<input name="amount" value="1000000"><input name="csrf_token" value="guess">'
            '<button id="send">Win a prize</button></form>')

    return app


def test_cross_site_form_is_refused_own_form_works(tmp_path: Path) -> None:
    transfers: list[str] = []
    with TestServer(bank(tmp_path, transfers)) as site, chromium() as browser:
        with TestServer(attacker(site.url), host="localhost") as evil:
            context = browser.new_context()
            context.set_default_timeout(10_000)
            page = context.new_page()
            # The visitor uses the bank (gets its CSRF cookie), then visits the attacker.
            page.goto(site.url + "/")
            with page.expect_navigation():
                page.click("#send")
            assert page.inner_text("body") == "transferred 10"
            assert transfers == ["10"]

            page.goto(evil.url + "/")
            with page.expect_response(site.url + "/transfer") as refused:
                page.click("#send")
            response = refused.value
            assert response.status == 403
            assert "cross-site request from origin" in response.text()
            assert transfers == ["10"]  # the forged transfer never reached the handler
