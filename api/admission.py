"""Admission: what a request may cost before the service spends anything on it.

Two checks keep one caller from holding the service for everyone else:

* :class:`KeyAdmission`, ASGI middleware, looks at the ``X-API-Key`` header before a byte
  of the body is read.  A request without a valid key goes on with an empty body, so the
  route's own key check answers it (401, one place for that answer) and a 60 MiB upload is
  never received.  A valid key may have at most ``Limits.max_concurrent_per_key`` image
  requests (enrol, search, verify, evidence, compare, batch submission) in flight; one more is
  answered 429 with ``Retry-After``, again before its body is read.
* :func:`check_pixel_budget` sums the pixels of all images of one request from their
  headers (no decoding) and refuses the request with 413 above
  ``Limits.max_request_pixels``: extraction costs about 1 s of CPU per megapixel, so four
  16 Mpx probes in one search held the CPUs for a minute.
"""

from __future__ import annotations

import json
import re
from collections import Counter

from anyio.to_thread import run_sync

from matcher.imageio import image_size

from .auth import KEY_HEADER
from .keys import authenticate
from .problems import TYPE_BASE, Problem

RETRY_AFTER_SECONDS = 1
"""Told to a key that sent more image requests than it may have in flight."""
PUBLIC_PATHS = frozenset({"/v1/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
"""Paths passed on untouched.  Any other request without a valid key reaches the app without its
body: the ``/v1`` routes then refuse it (their key dependency), while the workbench's pages and
the offline docs' assets (static files, no secrets) are served to anyone."""
IMAGE_ROUTES = re.compile(r"^/v1/(subjects|subjects/[^/]+/encounters|search|verify|verify/images|evidence|compare|"
                          r"jobs|jobs/manifest)$")
"""POST routes whose work is image decoding and extraction (counted against the key's concurrency)."""


class KeyAdmission:
    """ASGI middleware: no body without a valid key, and a cap on a key's image requests in flight.

    Parameters
    ----------
    app : ASGI app
    db : api.database.ApiDatabase
        Where the keys are.
    max_concurrent_per_key : int
        Image requests one key may have in flight.
    """

    def __init__(self, app, db, max_concurrent_per_key: int):
        self.app = app
        self.db = db
        self.max_concurrent = max_concurrent_per_key
        self._in_flight: Counter[str] = Counter()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path", "") in PUBLIC_PATHS:
            return await self.app(scope, receive, send)
        key = next((v for k, v in scope.get("headers", ()) if k == KEY_HEADER.lower().encode()), b"")
        record = await run_sync(authenticate, self.db, key.decode("latin-1")) if key else None
        if record is None:
            return await self.app(_without_body(scope), _empty_body(receive), send)
        if scope.get("method") != "POST" or not IMAGE_ROUTES.match(scope.get("path", "")):
            return await self.app(scope, receive, send)
        if self._in_flight[record.id] >= self.max_concurrent:
            return await _too_many(send, scope.get("path", ""), self.max_concurrent)
        self._in_flight[record.id] += 1  # no await between the check and this: one event loop, no race
        try:
            await self.app(scope, receive, send)
        finally:
            self._in_flight[record.id] -= 1
            if not self._in_flight[record.id]:
                del self._in_flight[record.id]


def _without_body(scope: dict) -> dict:
    drop = {b"content-length", b"content-type", b"transfer-encoding"}
    headers = [(k, v) for k, v in scope.get("headers", ()) if k not in drop] + [(b"content-length", b"0")]
    return {**scope, "headers": headers}


def _empty_body(receive):
    """``receive`` of a request whose body is not read: one empty body, then only the client's real
    disconnect.  (A made-up disconnect made streamed answers, static files, stop at once: 200 with
    no body.)  Only a streamed answer asks again; the body chunks it would meet are dropped."""
    sent = False

    async def empty():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        while (message := await receive())["type"] != "http.disconnect":
            pass
        return message

    return empty


async def _too_many(send, path: str, limit: int) -> None:
    body = json.dumps({"type": TYPE_BASE + "too-many-requests", "title": "Too Many Requests", "status": 429,
                       "detail": f"this key already has {limit} image requests in flight (the limit); "
                                 f"send the next when one is answered", "instance": path}).encode()
    await send({"type": "http.response.start", "status": 429,
                "headers": [(b"content-type", b"application/problem+json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"retry-after", str(RETRY_AFTER_SECONDS).encode())]})
    await send({"type": "http.response.body", "body": body})


def header_pixels(data: bytes) -> int:
    """Pixels of an encoded image, read from its header (0 when the header cannot be read).

    An image whose header is unreadable is refused by the decoder later at no cost;
    counting it as 0 here keeps that refusal (and its status) where it is.
    """
    size = image_size(data)
    return 0 if size is None else int(size[0]) * int(size[1])


def request_pixels(images) -> float:
    """Pixels the extraction of ``images`` (:class:`api.service.ImageInput`) works on: fingerprints
    below 500 ppi are counted as rescaled to 500 ppi, as they are extracted."""
    total = 0.0
    for im in images:
        px = header_pixels(im.data)
        if im.modality == "finger" and im.ppi < 500:
            px *= (500.0 / im.ppi) ** 2
        total += px
    return total


def check_pixel_budget(images, max_pixels: int) -> None:
    """Refuse (413) a request whose images hold more than ``max_pixels`` pixels together."""
    total = request_pixels(images)
    if total > max_pixels:
        raise Problem(413, f"the images of this request hold {total / 1e6:.1f} million pixels together; "
                           f"the limit is {max_pixels / 1e6:.1f} million per request: send fewer or smaller images",
                      type_=TYPE_BASE + "too-many-pixels")
