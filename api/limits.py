"""ASGI middleware: refuse a request body over the size limit with a 413 problem.

Checks ``Content-Length`` before anything is read and counts the bytes of bodies
sent without one (chunked), so an oversized upload is never buffered whole.
"""

from __future__ import annotations

import json


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send, path: str) -> None:
        body = json.dumps({"type": "https://locard.invalid/problems/request-too-large", "title": "Content Too Large",
                           "status": 413, "detail": f"the request body exceeds {self.max_bytes} bytes",
                           "instance": path}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    if int(value) > self.max_bytes:
                        return await self._refuse(send, scope.get("path", ""))
                except ValueError:
                    pass
        seen = 0
        started = False
        exceeded = False

        async def counting_receive():
            nonlocal seen, exceeded
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise _TooLarge()
            return msg

        async def tracking_send(msg):
            nonlocal started
            if exceeded:
                # the body parser turned our exception into its own error answer: answer 413 instead
                if msg["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(send, scope.get("path", ""))
                return
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send, scope.get("path", ""))
