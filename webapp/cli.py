"""``opsflow serve``: the engine's command line plus the web server (the console script's entry).

The engine's commands live in ``engine.cli``, which knows nothing of the web; this module adds
``serve`` to the same group. Gunicorn serves for real use (``--workers N``); ``--dev`` runs
Flask's development server. The timer worker runs in the serving process unless ``--no-worker``.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

import click
from gunicorn.app.base import BaseApplication

from engine import notifications
from engine.cli import main
from engine.runtime.services import timers
from webapp import create_app

__all__ = ["main"]


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn")
@click.option("--no-worker", is_flag=True, help="do not fire timers in this process")
@click.option("--no-access-log", is_flag=True, help="gunicorn: no line per request")
@click.pass_obj
def serve(
    state: Any, host: str, port: int, workers: int, dev: bool, no_worker: bool, no_access_log: bool
) -> None:
    """Serve the web app (the inbox at http://HOST:PORT/, login at /login).

    It runs with every setting from the environment (OPSFLOW_SECRET_KEY signs the sessions,
    OPSFLOW_HTTPS=1 marks their cookies Secure); --database overrides only the database.
    """
    app = create_app(state.settings, db=state.db)
    if not no_worker:
        mailer = notifications.Mailer.from_settings(state.settings)
        worker = partial(timers.run_forever, state.db, mailer=mailer)
        threading.Thread(target=worker, daemon=True).start()
    click.echo(f"opsflow: http://{host}:{port}/  (log in at /login)")
    if dev:
        app.run(host=host, port=port, debug=False, use_reloader=False)
        return
    _gunicorn(app, f"{host}:{port}", workers, access_log=not no_access_log)


def _dispose(app: Any) -> None:
    app.extensions["opsflow_db"].engine.dispose(close=False)


def _gunicorn(app: Any, bind: str, workers: int, *, access_log: bool = True) -> None:
    class _Server(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped: its base is Any
        def load_config(self) -> None:
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            if access_log:
                self.cfg.set("accesslog", "-")
            # a forked worker must not share the master's pooled connections
            self.cfg.set("post_fork", lambda _server, _worker: _dispose(app))

        def load(self) -> Any:
            return app

    _Server().run()


if __name__ == "__main__":
    main()
