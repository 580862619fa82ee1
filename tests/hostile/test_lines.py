"""Request lines and header lines: bytes, names, Host, versions, target forms (RFC 9112 §2-§5,
RFC 9110 §5, §7.2)."""

from __future__ import annotations

import pytest

from .helpers import Case, run_case

H = b"Host: a\r\n"


def get(*lines: bytes, target: bytes = b"/l", version: bytes = b"HTTP/1.1") -> bytes:
    return b"GET " + target + b" " + version + b"\r\n" + b"".join(
        line + b"\r\n" for line in lines) + b"\r\n"


OK = (200,)
BAD = (400,)

CASES = [
    # -- line endings and forbidden bytes (RFC 9112 §2.2, RFC 9110 §5.5) --------------------
    Case("crlf", get(b"Host: a"), OK, False, (b"GET /l 0",)),
    Case("bare-lf-everywhere", b"GET /l HTTP/1.1\nHost: a\n\n", BAD, True),
    Case("bare-lf-request-line", b"GET /l HTTP/1.1\nHost: a\r\n\r\n", BAD, True),
    Case("bare-lf-header", b"GET /l HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", BAD, True),
    Case("bare-lf-end-of-head", b"GET /l HTTP/1.1\r\nHost: a\r\n\n", BAD, True),
    Case("bare-cr-request-line", b"GET /l\r HTTP/1.1\r\nHost: a\r\n\r\n", BAD, True),
    Case("bare-cr-after-version", b"GET /l HTTP/1.1\rHost: a\r\n\r\n", BAD, True),
    Case("bare-cr-in-value", get(b"Host: a", b"X: a\rb"), BAD, True),
    Case("cr-cr-lf", get(b"Host: a\r"), BAD, True),
    Case("bare-cr-end-of-head", b"GET /l HTTP/1.1\r\nHost: a\r\n\r\r\n", BAD, True),
    Case("nul-in-target", get(b"Host: a", target=b"/l\x00x"), BAD, True),
    Case("nul-in-method", b"G\x00T /l HTTP/1.1\r\nHost: a\r\n\r\n", BAD, True),
    Case("nul-in-name", get(b"Host: a", b"X\x00: b"), BAD, True),
    Case("nul-in-value", get(b"Host: a", b"X: a\x00b"), BAD, True),
    Case("del-in-target", get(b"Host: a", target=b"/l\x7f"), BAD, True),
    Case("del-in-name", get(b"Host: a", b"X\x7f: b"), BAD, True),
    Case("del-in-value", get(b"Host: a", b"X: a\x7fb"), BAD, True),
    Case("ctl-in-value", get(b"Host: a", b"X: a\x01b"), BAD, True),
    Case("esc-in-value", get(b"Host: a", b"X: \x1b[31m"), BAD, True),
    Case("vtab-in-value", get(b"Host: a", b"X: a\x0bb"), BAD, True),
    Case("ctl-in-target", get(b"Host: a", target=b"/l\x01"), BAD, True),
    Case("tab-in-target", get(b"Host: a", target=b"/l\tx"), BAD, True),
    Case("space-in-target", get(b"Host: a", target=b"/l x"), BAD, True),
    Case("obs-text-in-target", get(b"Host: a", target=b"/caf\xc3\xa9"), BAD, True),
    Case("nel-in-target", get(b"Host: a", target=b"/l\x85"), BAD, True),
    Case("tab-in-value", get(b"Host: a", b"X: a\tb"), OK, False),
    Case("obs-text-in-value", get(b"Host: a", b"X: caf\xc3\xa9 \x85\xa0"), OK, False),
    Case("empty-value", get(b"Host: a", b"X:"), OK, False),
    # -- obs-fold (RFC 9112 §5.2: a server MUST reject or replace it; corkweb rejects) ------
    Case("obs-fold-space", get(b"Host: a", b"X: a", b" b"), BAD, True),
    Case("obs-fold-tab", get(b"Host: a", b"X: a", b"\tb"), BAD, True),
    Case("obs-fold-host", get(b"Host: a", b" b"), BAD, True),
    Case("space-before-first-header", get(b" Host: a"), BAD, True),
    Case("tab-before-first-header", get(b"\tHost: a"), BAD, True),
    # -- field names (RFC 9110 §5.1: a token) --------------------------------------------
    Case("name-all-tchars", get(b"Host: a", b"!#$%&'*+-.^_`|~09AZaz: v"), OK, False),
    Case("name-space-inside", get(b"Host: a", b"X Y: v"), BAD, True),
    Case("name-space-before-colon", get(b"Host : a"), BAD, True),
    Case("name-tab-before-colon", get(b"Host\t: a"), BAD, True),
    Case("name-empty", get(b"Host: a", b": v"), BAD, True),
    Case("name-no-colon", get(b"Host: a", b"Xyz"), BAD, True),
    Case("name-quote", get(b"Host: a", b'X"Y: v'), BAD, True),
    Case("name-paren", get(b"Host: a", b"X(Y: v"), BAD, True),
    Case("name-slash", get(b"Host: a", b"X/Y: v"), BAD, True),
    Case("name-at", get(b"Host: a", b"X@Y: v"), BAD, True),
    Case("name-brace", get(b"Host: a", b"X{Y: v"), BAD, True),
    Case("name-obs-text", get(b"Host: a", b"X\xe9: v"), BAD, True),
    Case("name-0x85", get(b"Host: a", b"X\x85: v"), BAD, True),
    Case("name-0xa0", get(b"Host: a", b"X\xa0: v"), BAD, True),
    Case("name-comma", get(b"Host: a", b"X,Y: v"), BAD, True),
    Case("name-semicolon", get(b"Host: a", b"X;Y: v"), BAD, True),
    # -- Host (RFC 9112 §3.2: exactly one in HTTP/1.1, else 400) -------------------------
    Case("host-missing", get(), BAD, True),
    Case("host-missing-http10", get(version=b"HTTP/1.0"), OK, True),
    Case("host-duplicate", get(b"Host: a", b"Host: b"), BAD, True),
    Case("host-duplicate-same", get(b"Host: a", b"Host: a"), BAD, True),
    Case("host-duplicate-case", get(b"Host: a", b"HOST: a"), BAD, True),
    Case("host-duplicate-http10", get(b"Host: a", b"Host: b", version=b"HTTP/1.0"), BAD, True),
    Case("host-empty", get(b"Host:"), OK, False),
    Case("host-port", get(b"Host: example.com:8080"), OK, False),
    Case("host-port-empty", get(b"Host: a:"), OK, False),
    Case("host-ipv4", get(b"Host: 127.0.0.1:80"), OK, False),
    Case("host-ipv6", get(b"Host: [::1]:80"), OK, False),
    Case("host-space", get(b"Host: a b"), BAD, True),
    Case("host-slash", get(b"Host: a/b"), BAD, True),
    Case("host-userinfo", get(b"Host: user@a"), BAD, True),
    Case("host-port-letters", get(b"Host: a:b"), BAD, True),
    Case("host-two-ports", get(b"Host: a:1:2"), BAD, True),
    Case("host-list", get(b"Host: a, b"), BAD, True),
    Case("host-question", get(b"Host: a?b"), BAD, True),
    Case("host-hash", get(b"Host: a#b"), BAD, True),
    Case("host-backslash", get(b"Host: a\\b"), BAD, True),
    Case("host-quote", get(b'Host: "a"'), BAD, True),
    Case("host-ipv6-unclosed", get(b"Host: [::1"), BAD, True),
    Case("host-obs-text", get(b"Host: caf\xc3\xa9"), BAD, True),
    # -- request line (RFC 9112 §3) -------------------------------------------------------
    Case("leading-crlf", b"\r\n" + get(b"Host: a"), OK, False),
    Case("leading-lf", b"\n" + get(b"Host: a"), OK, False),  # skipped as empty lines
    Case("leading-cr", b"\r" + get(b"Host: a"), OK, False),
    Case("leading-crlf-many", b"\r\n" * 50 + get(b"Host: a"), OK, False),
    Case("crlf-between-requests", get(b"Host: a") + b"\r\n" + get(b"Host: a"), (200, 200),
         False),
    Case("version-1.0", get(b"Host: a", version=b"HTTP/1.0"), OK, True),
    Case("version-1.0-keep-alive", get(b"Host: a", b"Connection: keep-alive",
                                        version=b"HTTP/1.0"), OK, False),
    Case("version-1.2", get(b"Host: a", version=b"HTTP/1.2"), (505,), True),
    Case("version-2.0", get(b"Host: a", version=b"HTTP/2.0"), (505,), True),
    Case("version-3.0", get(b"Host: a", version=b"HTTP/3.0"), (505,), True),
    Case("version-9.9", get(b"Host: a", version=b"HTTP/9.9"), (505,), True),
    Case("version-0.9", get(b"Host: a", version=b"HTTP/0.9"), BAD, True),
    Case("version-missing-http09", b"GET /l\r\n\r\n", BAD, True),
    Case("version-two-digits", get(b"Host: a", version=b"HTTP/1.10"), BAD, True),
    Case("version-leading-zero", get(b"Host: a", version=b"HTTP/01.1"), BAD, True),
    Case("version-no-dot", get(b"Host: a", version=b"HTTP/11"), BAD, True),
    Case("version-lowercase", get(b"Host: a", version=b"http/1.1"), BAD, True),
    Case("version-trailing-space", get(b"Host: a", version=b"HTTP/1.1 "), BAD, True),
    Case("version-garbage", get(b"Host: a", version=b"FOO/1.1"), BAD, True),
    # The HTTP/2 preface: llhttp stops at "PRI *" ("*" is for OPTIONS only): 400.
    Case("h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", BAD, True),
    Case("h2-request-line", get(b"Host: a", version=b"HTTP/2"), BAD, True),
    # RFC 9112 §3 lets a recipient split the request line on whitespace; llhttp does.
    Case("double-space", b"GET  /l HTTP/1.1\r\nHost: a\r\n\r\n", OK, False),
    Case("tab-separator", b"GET\t/l HTTP/1.1\r\nHost: a\r\n\r\n", BAD, True),
    Case("empty-target", b"GET  HTTP/1.1\r\nHost: a\r\n\r\n", BAD, True),
    Case("method-lowercase", b"get /l HTTP/1.1\r\nHost: a\r\n\r\n", BAD, True),
    Case("method-unknown", b"FOO /l HTTP/1.1\r\nHost: a\r\n\r\n", BAD, True),
    Case("method-empty", b" /l HTTP/1.1\r\nHost: a\r\n\r\n", BAD, True),
    # RFC 9112 §2.2: empty lines before a request line are ignored.
    Case("empty-lines-only", b"\r\n\r\n", (), False),
    Case("garbage-line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", BAD, True),
    # -- target forms (RFC 9112 §3.2) ---------------------------------------------------------
    Case("asterisk-get", get(b"Host: a", target=b"*"), BAD, True),
    Case("asterisk-post", b"POST * HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", BAD, True),
    Case("asterisk-options", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", (404,), False),
    Case("absolute-form", get(b"Host: other", target=b"http://example.com/x?y=1"), OK, False,
         (b"GET /x 0",)),
    Case("absolute-form-no-path", get(b"Host: a", target=b"http://example.com"), OK, False,
         (b"GET / 0",)),
    Case("absolute-form-https-port", get(b"Host: a", target=b"https://a:443/p"), OK, False,
         (b"GET /p 0",)),
    Case("absolute-form-no-authority", get(b"Host: a", target=b"http:///x"), BAD, True),
    Case("absolute-form-no-host-header", get(target=b"http://a/x"), BAD, True),
    Case("authority-form-get", get(b"Host: a", target=b"example.com:80"), BAD, True),
    Case("scheme-less-target", get(b"Host: a", target=b"example.com/x"), BAD, True),
    Case("double-slash-path", get(b"Host: a", target=b"//x"), OK, False, (b"GET //x 0",)),
    Case("fragment", get(b"Host: a", target=b"/x#frag"), OK, False, (b"GET /x 0",)),
    Case("percent-nul", get(b"Host: a", target=b"/x%00"), OK, False),
    Case("connect-authority", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", (404,), True),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_lines(hostile_server, case: Case) -> None:
    run_case(hostile_server.port, case)
