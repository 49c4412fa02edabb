"""Where a form may send the browser next: only a path on this site."""

from __future__ import annotations

from urllib.parse import urlsplit


def local_path(target: str | None, fallback: str) -> str:
    """``target`` when it is a plain path here (``/tasks/3?x=1``); otherwise ``fallback``.

    Refused: schemes and hosts (``https://…``, ``//host``), backslashes (browsers read ``/\\host``
    as ``//host``) and control characters (``/%09/host`` arrives as a tab the browser drops).
    """
    if not target or any(ord(c) < 32 or c in "\\\x7f" for c in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    return target
