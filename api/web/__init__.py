"""The examiners' workbench: static pages served by ``locard serve`` itself at ``/workbench/``.

Plain HTML, one stylesheet and ES modules under ``static/`` (no build step, no CDN): the
pages sign in with an API key kept in the browser tab's session storage and call the
``/v1`` routes with it in the ``X-API-Key`` header, so the service's keys, roles, access
rules and audit log apply to everything done in them.  ``/`` redirects to the workbench.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")
PATH = "/workbench"
HEADERS = {
    # revalidate each file (ETag) so that an upgraded server never runs with stale modules
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # the pages load only their own files; images come as data: URLs, downloads as blob: URLs
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}


class _Pages(StaticFiles):
    async def get_response(self, path: str, scope):
        response = await super().get_response(path, scope)
        response.headers.update(HEADERS)
        return response


def mount_workbench(app: FastAPI) -> None:
    """Serve the workbench at ``/workbench/`` and redirect ``/`` there."""
    app.mount(PATH, _Pages(directory=STATIC, html=True), name="workbench")
    app.add_api_route("/", lambda: RedirectResponse(f"{PATH}/"), methods=["GET"], include_in_schema=False)
