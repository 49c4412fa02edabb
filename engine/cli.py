"""The ``opsflow`` command: init, validate, deploy, start, tasks, claim, complete, instance, audit, worker."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from engine import audit, case_files, conformance, runtime
from engine.config import Settings
from engine.definitions import registry
from engine.errors import InvalidDefinitionError, InvalidInputError, OpsflowError
from engine.people import identity
from engine.runtime.services import inbox, timers
from engine.storage.db import Database

F = TypeVar("F", bound=Callable[..., Any])


class _State:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._db: Database | None = None

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.settings.database_url)
        return self._db


def _one_line_errors(func: F) -> F:
    """Engine errors print one clear line and exit non-zero, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InvalidDefinitionError as exc:
            for line in [str(p) for p in exc.problems] or [str(exc)]:
                click.echo(f"error: {line}", err=True)
            sys.exit(1)
        except InvalidInputError as exc:
            details = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.field_errors.items())
            click.echo(f"error: {exc}" + (f" ({details})" if details else ""), err=True)
            sys.exit(1)
        except OpsflowError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _actor(state: _State, username: str) -> identity.Actor:
    with state.db.read() as session:
        return identity.get_actor(session, username)


def _json_arg(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"--data 不是合法 JSON / --data is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidInputError("--data 必须是 JSON 对象 / --data must be a JSON object")
    return value


@click.group()
@click.option(
    "--database",
    "database_url",
    default=None,
    help="SQLAlchemy URL (default: OPSFLOW_DATABASE_URL, else the SQLite file instance/opsflow.sqlite)",
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """opsflow: the operations department's procedures as executable BPMN."""
    settings = Settings.from_environment()
    if database_url is not None:
        settings = replace(settings, database_url=database_url)
    ctx.obj = state = _State(settings)
    ctx.call_on_close(state.close)


@main.command()
@click.pass_obj
@_one_line_errors
def init(state: _State) -> None:
    """Create/upgrade the database, load the demo department and case files, deploy processes/ (idempotent)."""
    state.db.upgrade()
    with state.db.unit_of_work() as session:
        created = identity.load_department(session, state.settings.demo_data)
        case_files.load_demo(session, state.settings.demo_case_files)
        deployed = registry.deploy_all(
            session, identity.SYSTEM, registry.read_directory(state.settings.processes_dir)
        )
    for version in deployed:
        flag = "deployed" if version.created else "unchanged"
        click.echo(f"{flag}: {version.key} v{version.version} ({version.name})")
    for person in created:
        click.echo(
            f"demo user: {person['username']} / {person['password']}  ({', '.join(person['roles'])})"
        )
    click.echo(f"database ready: {state.settings.database_url}")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check BPMN, DMN and form files exactly as deploy would, without deploying.

    Files are deployed into a throwaway database, callees first: a called process must be
    among the files given.
    """
    problems = conformance.validate_paths(paths)
    for problem in problems:
        click.echo(str(problem))
    click.echo(f"{len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


@main.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--as", "username", default="system", help="the process owner deploying")
@click.pass_obj
@_one_line_errors
def deploy(state: _State, path: Path, username: str) -> None:
    """Deploy a BPMN file (or a folder) as new versions."""
    actor = identity.SYSTEM if username == "system" else _actor(state, username)
    batch = registry.read_directory(path) if path.is_dir() else conformance.files_for(path)
    with state.db.unit_of_work() as session:
        deployed = registry.deploy_all(session, actor, batch)
    for version in deployed:
        click.echo(
            f"{'deployed' if version.created else 'unchanged'}: {version.key} v{version.version}"
        )


@main.command()
@click.argument("key")
@click.option("--as", "username", required=True)
@click.option("--data", default="{}", help="start data as a JSON object")
@click.option("--business-key", default=None)
@click.pass_obj
@_one_line_errors
def start(state: _State, key: str, username: str, data: str, business_key: str | None) -> None:
    """Start a process instance."""
    summary = runtime.start_instance(
        state.db, _actor(state, username), key, _json_arg(data), business_key=business_key
    )
    click.echo(
        f"instance {summary.id}: {summary.status}; open tasks: {list(summary.open_task_ids)}"
    )


@main.command()
@click.option("--as", "username", required=True)
@click.option("--tab", type=click.Choice([inbox.MINE, inbox.CLAIMABLE, inbox.DONE]), default=None)
@click.pass_obj
@_one_line_errors
def tasks(state: _State, username: str, tab: str | None) -> None:
    """List a user's tasks (assigned to them, then their roles' unclaimed ones)."""
    actor = _actor(state, username)
    for current in [tab] if tab else [inbox.MINE, inbox.CLAIMABLE]:
        for row in inbox.list_tasks(state.db, actor, current, limit=500):
            due = f" due {row.due_at:%Y-%m-%d %H:%M}" if row.due_at else ""
            click.echo(
                f"[{current}] task {row.id}: {row.name} ({row.process_key} #{row.instance_id}, role {row.candidate_role}){due}"
            )


@main.command()
@click.argument("task_id", type=int)
@click.option("--as", "username", required=True)
@click.pass_obj
@_one_line_errors
def claim(state: _State, task_id: int, username: str) -> None:
    """Claim a task of your role."""
    runtime.claim_task(state.db, _actor(state, username), task_id)
    click.echo(f"task {task_id} claimed by {username}")


@main.command()
@click.argument("task_id", type=int)
@click.option("--as", "username", required=True)
@click.option("--data", default="{}", help="the form data as a JSON object")
@click.pass_obj
@_one_line_errors
def complete(state: _State, task_id: int, username: str, data: str) -> None:
    """Complete a task with its form data."""
    summary = runtime.complete_task(state.db, _actor(state, username), task_id, _json_arg(data))
    click.echo(
        f"task {task_id} completed; instance {summary.id}: {summary.status}; open tasks: {list(summary.open_task_ids)}"
    )


@main.command()
@click.argument("instance_id", type=int)
@click.pass_obj
@_one_line_errors
def instance(state: _State, instance_id: int) -> None:
    """Show an instance: state, open tasks, waits and history."""
    view = runtime.get_instance(state.db, instance_id)
    s = view.summary
    click.echo(f"instance {s.id}: {s.key} v{s.definition_version} [{s.status}] {s.title}")
    if s.error:
        click.echo(f"  error: {s.error}")
    for row in inbox.open_tasks_of(state.db, instance_id):
        click.echo(
            f"  open task {row.id}: {row.name} (role {row.candidate_role}, assignee {row.assignee_id})"
        )
    for name in view.waiting_messages:
        click.echo(f"  waiting for message: {name}")
    for bpmn_id, due in view.waiting_timers:
        click.echo(f"  waiting for timer {bpmn_id} at {due.isoformat()}")
    for event in view.history:
        click.echo(
            f"  #{event['seq']} {event['at']} {event['actor']} {event['type']} {event['task_id'] or ''}"
        )


@main.group(name="audit")
def audit_group() -> None:
    """The audit trail."""


@audit_group.command()
@click.pass_obj
@_one_line_errors
def verify(state: _State) -> None:
    """Recompute the hash chain and name the first broken event."""
    with state.db.read() as session:
        report = audit.verify(session)
    if report.ok:
        click.echo(f"audit chain intact: {report.checked} events")
        return
    click.echo(
        f"audit chain BROKEN at event {report.first_broken_seq}: {report.reason} ({report.checked} events before it are intact)",
        err=True,
    )
    sys.exit(1)


@main.command()
@click.option("--interval", default=5.0, help="seconds to sleep when nothing is due")
@click.option("--once", is_flag=True, help="fire what is due now and exit")
@click.pass_obj
@_one_line_errors
def worker(state: _State, interval: float, once: bool) -> None:
    """Fire due timers and start periodic processes."""
    if once:
        click.echo(f"fired: {timers.run_once(state.db)}")
        return
    click.echo("worker running; Ctrl-C to stop")
    timers.run_forever(state.db, interval)


@main.command(name="conformance")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--report", type=click.Path(path_type=Path), default=None, help="write a Markdown report here"
)
def conformance_command(folder: Path, report: Path | None) -> None:
    """Deploy and run every BPMN file of a folder; one line per file and a summary."""
    results = conformance.walk(folder)
    for result in results:
        click.echo(result.line())
    click.echo(conformance.summary(results))
    if report is not None:
        report.write_text(conformance.markdown(results, folder), encoding="utf-8")
    sys.exit(1 if any(r.outcome == conformance.CRASHED for r in results) else 0)
