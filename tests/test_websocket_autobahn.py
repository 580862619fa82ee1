"""Autobahn conformance through kosoku (the Autobahn case files, without Python 2).

Groups 1–7 and 10 run against the fast frame parser (no extensions); groups 12–13 against
permessage-deflate. The whole of 12–13 takes about 12 minutes on a 2-core machine, so a
normal run takes a sample of each sub-group; ``CORKWEB_AUTOBAHN_FULL=1`` runs all of it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from corkweb import App
from corkweb.testing import TestServer

kosoku = pytest.importorskip("kosoku")

# The Autobahn case files that kosoku runs open their test data without closing it (12.x, 13.x
# read testdata/data1.json): a ResourceWarning in kosoku's code, not in corkweb's.
pytestmark = [
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

COMPRESSION_SAMPLE = [
    "12.1.1", "12.1.2", "12.1.3", "12.1.4", "12.2.1", "12.3.1", "12.4.1", "12.5.1",
    "13.1.1", "13.1.2", "13.1.3", "13.2.1", "13.3.1", "13.4.1", "13.5.1", "13.6.1", "13.7.1",
]


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    app = App(templates=None)
    echo = {"message": lambda ws, msg, opcode: ws.send(msg, opcode)}
    app.ws("/", echo)
    app.ws("/deflate", {**echo, "compression": 1})
    with TestServer(app) as server:
        yield server


def run_cases(url: str, cases: list[str]) -> list[tuple[str, str, str]]:
    async def main() -> list[object]:
        try:
            return list(await kosoku.run_fuzzingclient(url, cases, concurrency=2))
        except kosoku.FailureError as exc:
            return list(exc.results)

    results = asyncio.run(main())
    assert results, "kosoku ran no case"
    failed = []
    for r in results:
        behavior = r.behavior.value  # type: ignore[attr-defined]
        closing = r.behavior_close.value  # type: ignore[attr-defined]
        if behavior in ("FAILED", "ERROR", "UNIMPLEMENTED") or closing in (
                "FAILED", "FAILED_BY_CLIENT", "WRONG_CODE", "UNCLEAN"):
            failed.append((r.case_id, behavior, closing))  # type: ignore[attr-defined]
    return failed


def test_autobahn_framing_to_close_and_misc(server: TestServer) -> None:
    cases = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"]
    assert run_cases(f"ws://127.0.0.1:{server.port}/", cases) == []


def test_autobahn_permessage_deflate(server: TestServer) -> None:
    full = os.environ.get("CORKWEB_AUTOBAHN_FULL") == "1"
    cases = ["12.*", "13.*"] if full else COMPRESSION_SAMPLE
    assert run_cases(f"ws://127.0.0.1:{server.port}/deflate", cases) == []
