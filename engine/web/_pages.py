"""The worklist page: the HTTP API for a person, in a browser (``/`` and ``/cases/{case_id}``).

Theory of operation. The pages are static shells: one HTML file, one script and one stylesheet
under ``static/``, read once when the app is built; no build step, no template engine. The
script does the rest through the JSON API, exactly as any other client does: it keeps the API key
in the tab's ``sessionStorage`` and sends it as ``Authorization: Bearer``; it reads the event
streams with ``fetch()`` (``EventSource`` cannot send that header, and a key in a URL ends up in
logs and browser history), and it re-reads the lists when an event says something changed.

So the pages hold no secret and need no session on the server, and what a key may see or do is
decided by the API alone (a viewer's page hides the buttons; the API answers 403 if they are
forced). Everything shown is inserted as text (``textContent``), never as HTML; the
Content-Security-Policy allows scripts from this origin only, no inline script, and pictures
from this origin or ``blob:`` (the net's SVG is fetched with the key and shown as an image, where
no script of it could run).

The only thing filled in on the server is the app's mount point (``root_path``), so that the
page works when the app is mounted under a prefix.
"""

from __future__ import annotations

import html
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

__all__ = ("ASSETS", "SECURITY_HEADERS", "page_routes")

ASSETS = {
    "worklist.js": "text/javascript; charset=utf-8",
    "worklist.css": "text/css; charset=utf-8",
}
"""The files under ``static/`` served at ``/static/NAME``, with their media types."""

CSP = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob:",
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
))

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
"""The headers every page and static file is answered with."""

_SHELL = "worklist.html"
_ROOT = "{{root}}"


def page_routes() -> list[Route]:
    """The routes of the worklist page: ``/``, ``/cases/{case_id}`` and its static files.

    Raises:
        FileNotFoundError: the package was installed without its ``static/`` files (a packaging
            bug: pyproject.toml's package-data must list ``static/*`` for ``yawlflow.web``).
    """
    static = resources.files(__package__).joinpath("static")
    shell = static.joinpath(_SHELL).read_text(encoding="utf-8")
    files = {name: static.joinpath(name).read_bytes() for name in ASSETS}

    async def page(request: Request) -> Response:
        root = html.escape(str(request.scope.get("root_path", "")).rstrip("/"), quote=True)
        return HTMLResponse(shell.replace(_ROOT, root), headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})

    def asset(name: str) -> Route:
        body, media_type = files[name], ASSETS[name]

        async def serve(request: Request) -> Response:
            return Response(body, media_type=media_type, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})

        return Route(f"/static/{name}", serve, methods=["GET"])

    return [
        Route("/", page, methods=["GET"]),
        Route("/cases/{case_id}", page, methods=["GET"]),
        *(asset(name) for name in ASSETS),
    ]
