"""Front-end packages from the npm registry (``package.json``; ``make setup`` runs ``npm ci``).

Only the named files and folders of node_modules are served, never the folder itself.
"""

from __future__ import annotations

from flask import Blueprint, abort, send_from_directory
from flask.typing import ResponseReturnValue

from engine.config import PROJECT_ROOT

bp = Blueprint("assets", __name__)
NODE_MODULES = PROJECT_ROOT / "node_modules"
FILES = {
    "htmx.min.js": "htmx.org/dist",
    "pico.min.css": "@picocss/pico/css",
    "bpmn-navigated-viewer.production.min.js": "bpmn-js/dist",
}
FOLDERS = {"bpmn-js": "bpmn-js/dist/assets"}  # the viewer's CSS and its icon font
MAX_AGE = 86400


@bp.get("/assets/<name>")
def file(name: str) -> ResponseReturnValue:
    folder = FILES.get(name)
    if folder is None:
        abort(404)
    return send_from_directory(NODE_MODULES / folder, name, max_age=MAX_AGE)


@bp.get("/assets/<package>/<path:name>")
def package_file(package: str, name: str) -> ResponseReturnValue:
    folder = FOLDERS.get(package)
    if folder is None:
        abort(404)
    return send_from_directory(NODE_MODULES / folder, name, max_age=MAX_AGE)  # safe_join inside
