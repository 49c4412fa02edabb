"""Security headers on every answer: what the browser may load, frame and tell other sites.

The Content-Security-Policy allows scripts, styles, fonts and fetches from this site only, no
inline script or style (templates keep theirs in ``static/``; htmx is told not to inject its
indicator style nor to evaluate anything), no plugins, no framing, no ``<base>``, and forms that
post here only. bpmn-js draws its icons from ``data:`` fonts and images.
"""

from __future__ import annotations

from flask import Flask, Response

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Referrer-Policy": "same-origin",  # case and task URLs never leave the site
    "X-Content-Type-Options": "nosniff",
}


def init_app(app: Flask) -> None:
    app.after_request(_secure)


def _secure(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response
