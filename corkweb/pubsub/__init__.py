"""Pub/sub topics for WebSockets: who is subscribed to what, and fan-out.

``PubSub`` keeps the subscribers of this process. A publish serialises the frame **once** and
hands the same bytes to every subscriber (DESIGN.md §1 rule 7); each subscriber's connection
queues it through the corker, so a subscriber that receives many messages in one loop tick
gets them in one write.

Where a publish goes is a :class:`Backend`'s business. :class:`LocalBackend`, the default,
delivers inside this process. A backend that spans processes (Redis, in
``corkweb.pubsub.redis``) implements the same three methods: ``publish`` forwards the frame to
the other processes and delivers it locally, and ``topic_added`` / ``topic_removed`` tell it
when this process starts or stops caring about a topic (to SUBSCRIBE / UNSUBSCRIBE upstream).
Frames received from elsewhere are handed to :meth:`PubSub.deliver`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Subscriber", "Backend", "LocalBackend", "PubSub"]


class Subscriber(Protocol):
    """What a topic holds: a connection that can send a serialised frame."""

    def send_frame(self, frame: bytes) -> int: ...


class Backend(Protocol):
    """Carries published frames to the subscribers of every process that shares it."""

    def attach(self, deliver: Callable[[str, bytes, Any], int]) -> None:
        """Called once with the local delivery function ``deliver(topic, frame, sender)``."""

    def publish(self, topic: str, frame: bytes, sender: Any) -> int:
        """Deliver ``frame`` to the subscribers of ``topic`` (all but ``sender``)."""

    def topic_added(self, topic: str) -> None:
        """The first local subscriber of ``topic`` arrived."""

    def topic_removed(self, topic: str) -> None:
        """The last local subscriber of ``topic`` left."""


class LocalBackend:
    """The default backend: one process, delivered at once."""

    def __init__(self) -> None:
        self._deliver: Callable[[str, bytes, Any], int] | None = None

    def attach(self, deliver: Callable[[str, bytes, Any], int]) -> None:
        self._deliver = deliver

    def publish(self, topic: str, frame: bytes, sender: Any) -> int:
        assert self._deliver is not None, "backend used before PubSub attached it"
        return self._deliver(topic, frame, sender)

    def topic_added(self, topic: str) -> None:
        """Nothing to tell: every subscriber is in this process."""

    def topic_removed(self, topic: str) -> None:
        """Nothing to tell: every subscriber is in this process."""


class PubSub:
    """Topics of one process: ``topic -> subscribers`` (insertion-ordered, no duplicates)."""

    __slots__ = ("_topics", "backend")

    def __init__(self, backend: Backend | None = None) -> None:
        self._topics: dict[str, dict[Subscriber, None]] = {}
        self.backend: Backend = backend if backend is not None else LocalBackend()
        self.backend.attach(self.deliver)

    def subscribe(self, sub: Subscriber, topic: str) -> tuple[int, int]:
        """Add ``sub`` to ``topic``; returns ``(new_count, old_count)``."""
        subs = self._topics.get(topic)
        if subs is None:
            subs = self._topics[topic] = {}
            self.backend.topic_added(topic)
        old = len(subs)
        subs[sub] = None
        return len(subs), old

    def unsubscribe(self, sub: Subscriber, topic: str) -> tuple[int, int]:
        """Remove ``sub`` from ``topic``; returns ``(new_count, old_count)``."""
        subs = self._topics.get(topic)
        if subs is None:
            return 0, 0
        old = len(subs)
        subs.pop(sub, None)
        if not subs:
            del self._topics[topic]
            self.backend.topic_removed(topic)
        return len(subs), old

    def is_subscribed(self, sub: Subscriber, topic: str) -> bool:
        subs = self._topics.get(topic)
        return subs is not None and sub in subs

    def num_subscribers(self, topic: str) -> int:
        """Subscribers of ``topic`` in this process."""
        subs = self._topics.get(topic)
        return len(subs) if subs is not None else 0

    def publish(self, topic: str, frame: bytes, sender: Any = None) -> int:
        """Send the serialised ``frame`` to the subscribers of ``topic`` except ``sender``."""
        return self.backend.publish(topic, frame, sender)

    def deliver(self, topic: str, frame: bytes, sender: Any = None) -> int:
        """Local fan-out: the same bytes to each subscriber; returns how many got it."""
        subs = self._topics.get(topic)
        if not subs:
            return 0
        count = 0
        # A copy: a subscriber's send may close it, which unsubscribes it.
        for sub in tuple(subs):
            if sub is not sender:
                sub.send_frame(frame)
                count += 1
        return count
