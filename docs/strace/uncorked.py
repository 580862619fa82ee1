"""The same response without corking: ``python uncorked.py PORT``.

A plain asyncio protocol (standard library only) that calls ``transport.write`` for each piece
as the code produces it: status line, each header, the cookie, the end of the head, the body.
That is what a server does when nothing packs its writes; each call is one ``write`` syscall
because the socket's buffer is empty every time.
"""

import asyncio
import sys

PIECES = [
    b"HTTP/1.1 200 OK\r\n",
    b"x-one: 1\r\n",
    b"x-two: 2\r\n",
    b"x-three: 3\r\n",
    b"set-cookie: session=abc; Path=/; HttpOnly\r\n",
    b"content-type: text/plain; charset=utf-8\r\n",
    b"content-length: 13\r\n\r\n",
    b"Hello, World!",
]


class Uncorked(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data):
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            for piece in PIECES:
                self.transport.write(piece)


async def main(port):
    server = await asyncio.get_running_loop().create_server(Uncorked, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


asyncio.run(main(int(sys.argv[1])))
