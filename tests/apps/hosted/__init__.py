"""Real ASGI and WSGI applications, each built with its own framework, hosted by corkweb in
tests/test_asgi_*.py (and runnable with ``corkweb run --interface ...``)."""
