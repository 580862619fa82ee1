"""The typed POST workload shared by its apps: the request body and the expected answer.

``POST /items`` with a ~150-byte JSON body validated into a structure of four fields (a string,
a float, a list of strings, an optional int with a constraint), answered 201 with a 3-field
JSON object. Only the standard library is imported here.
"""
from __future__ import annotations

import json

BODY = json.dumps({
    "name": "Corkscrew deluxe, stainless steel",
    "price": 24.5,
    "tags": ["kitchen", "wine", "tools", "gift", "steel"],
    "stock": 120,
    "note": "sent by the benchmark, ignored",
}, separators=(",", ":")).encode()
ANSWER = {"id": 1, "name": "Corkscrew deluxe, stainless steel", "price": 24.5}
STOCK_MAX = 10_000  # the constraint on the optional int: 0 <= stock <= STOCK_MAX
