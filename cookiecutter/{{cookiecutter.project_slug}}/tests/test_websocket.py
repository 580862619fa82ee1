"""The chat WebSocket: a message from one client reaches every client in the room."""


def test_message_reaches_everyone(client):
    with client.websocket("/chat/ws") as alice, client.websocket("/chat/ws") as bob:
        # Both are subscribed once the handshake is done; a round trip proves it for alice.
        alice.send("hello")
        assert alice.recv(timeout=5) == "hello"
        assert bob.recv(timeout=5) == "hello"
        bob.send("hi alice")
        assert alice.recv(timeout=5) == "hi alice"
{%- if cookiecutter.with_templates == "yes" %}


def test_chat_page(client):
    r = client.get("/chat")
    assert r.status_code == 200 and '<script src="/static/chat.js">' in r.text
    assert client.get("/static/chat.js").status_code == 200
{%- endif %}
