"""The ``ssl.SSLContext`` for serving HTTPS, from the standard ``ssl`` module only.

TLS sits under the corker unchanged: asyncio's SSL transport takes the corker's one
``transport.write`` per scope and encrypts it, so a corked response is one batch of TLS records
and, usually, one send syscall (``tests/test_tls.py`` counts the writes over a TLS socket).
"""

from __future__ import annotations

import ssl

__all__ = ["make_ssl_context"]

_CERT_REQS = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}


def make_ssl_context(
    certfile: str,
    keyfile: str | None = None,
    *,
    password: str | None = None,
    ca_certs: str | None = None,
    cert_reqs: str | None = None,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """A server context: certificate chain and key, optional client-certificate checking.

    * ``ca_certs``: CA bundle for client certificates; with it, ``cert_reqs`` defaults to
      ``"required"`` (mutual TLS). ``cert_reqs`` is ``"none"``, ``"optional"`` or
      ``"required"``.
    * ``ciphers``: an OpenSSL cipher string for TLS 1.2 (TLS 1.3 suites are not configurable
      through ``ssl``).
    * ALPN offers ``http/1.1`` only: corkweb speaks HTTP/1.1, and a client that asked for h2
      must learn it will not get it during the handshake, not from garbage afterwards.
    * TLS 1.2 is the minimum; compression is off (CRIME); the server's cipher order wins.

    A wrong path, a key that does not match or a wrong password raise here, at start-up, with
    the file named, rather than at the first handshake.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        ctx.load_cert_chain(certfile, keyfile, password=password)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"TLS certificate or key not found: {exc.filename}") from exc
    except ssl.SSLError as exc:
        raise ssl.SSLError(exc.errno, f"cannot load the TLS certificate {certfile!r} and key "
                           f"{keyfile or certfile!r} (wrong password or a key that does not "
                           f"match?): {exc}") from exc
    if ca_certs:
        ctx.load_verify_locations(cafile=ca_certs)
    reqs = cert_reqs or ("required" if ca_certs else "none")
    if reqs not in _CERT_REQS:
        raise ValueError(f"cert_reqs must be one of {', '.join(_CERT_REQS)}, got {reqs!r}")
    if reqs != "none" and not ca_certs:
        raise ValueError(f"cert_reqs={reqs!r} needs ca_certs to verify client certificates")
    ctx.verify_mode = _CERT_REQS[reqs]
    if ciphers:
        ctx.set_ciphers(ciphers)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
