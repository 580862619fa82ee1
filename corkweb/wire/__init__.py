"""Sans-IO HTTP/1.1 pieces: the request parser, limits, and the response serialisers.

See ``README.md`` beside this file for the rule this package keeps (no I/O, no asyncio).
"""
