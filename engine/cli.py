"""The ``opsflow`` command: init, validate, deploy, start, tasks, claim, complete, instance, audit, worker."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from sqlalchemy import exc as db_errors

from engine import audit, case_files, conformance, notifications, runtime
from engine.config import Settings
from engine.definitions import registry
from engine.errors import InvalidDefinitionError, InvalidInputError, OpsflowError
from engine.people import identity
from engine.runtime.services import catalogue, failures, inbox, timers
from engine.storage.db import Database
from engine.storage.models import MAX_ROW_ID

MAX_DATA_DEPTH = 32  # --data nested deeper than this is refused (business data is a few levels)


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


# --- failures: one line on stderr, a non-zero exit, never a traceback ---


def _input_lines(exc: InvalidInputError) -> list[str]:
    details = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.field_errors.items())
    return [f"{exc}" + (f" ({details})" if details else "")]


def _os_lines(exc: OSError) -> list[str]:
    if exc.filename is None:
        return [f"系统错误 / system error: {exc.strerror or exc}"]
    return [f"无法读写 {exc.filename} / cannot use {exc.filename}: {exc.strerror or exc}"]


def _database_lines(exc: db_errors.DBAPIError) -> list[str]:
    reason = str(exc.orig).strip().splitlines()
    return [f"数据库不可用 / the database cannot be used: {reason[0] if reason else exc}"]


_FAILURES: list[tuple[type[Exception], Callable[[Any], list[str]]]] = [
    (InvalidDefinitionError, lambda e: [str(p) for p in e.problems] or [str(e)]),
    (InvalidInputError, _input_lines),
    (OpsflowError, lambda e: [str(e)]),
    (
        db_errors.ArgumentError,
        lambda e: [
            f"数据库地址无效（--database 或 OPSFLOW_DATABASE_URL）/ the database URL is not valid: {e}"
        ],
    ),
    (db_errors.DBAPIError, _database_lines),
    (OSError, _os_lines),
]


def _failure_lines(exc: Exception) -> list[str]:
    for kind, lines in _FAILURES:
        if isinstance(exc, kind):
            return lines(exc)
    return [f"意外错误 / unexpected error: {type(exc).__name__}: {exc}"]


def _shown(text: str) -> str:
    """An argument as the user typed it, undecodable bytes as ``\\xff``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class _Opsflow(click.Group):
    """The command group: any failure becomes ``error: …`` lines on stderr and exit status 1.

    Usage mistakes click itself detects (an unknown command, a missing option) keep click's own
    message and exit status 2.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for arg in args:
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidInputError(
                    f"参数不是 UTF-8 文本 / an argument is not UTF-8 text: {_shown(arg)}"
                ) from exc
        return super().parse_args(ctx, args)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, **kwargs)
        except Exception as exc:  # the one place a failure meets the terminal
            for line in _failure_lines(exc):
                click.echo(f"error: {line}", err=True)
            sys.exit(1)


# --- arguments ---


class _RowId(click.ParamType[int]):
    """A task or case id: 1 up to the databases' 64-bit limit."""

    name = "id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        name = param.human_readable_name if param is not None else "ID"
        try:
            number = int(value)
        except ValueError:
            number = 0
        if not 1 <= number <= MAX_ROW_ID:
            raise InvalidInputError(
                f"{name} 必须是 1 到 {MAX_ROW_ID} 之间的整数 / {name} must be a whole number "
                f"from 1 to {MAX_ROW_ID}: {value}"
            )
        return number


class _ExistingPath(click.ParamType[Path]):
    """A file or folder that exists (a folder only, with ``folder=True``)."""

    name = "path"

    def __init__(self, *, folder: bool = False):
        self.folder = folder

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        path = Path(value)
        if not path.exists():
            raise InvalidInputError(f"文件或文件夹不存在 / no such file or folder: {value}")
        if self.folder and not path.is_dir():
            raise InvalidInputError(f"不是文件夹 / not a folder: {value}")
        return path


ROW_ID = _RowId()
IMPERSONATE = (
    "the user to act as (an impersonation: no password is asked; the engine refuses what it "
    "would refuse USER, and the audit trail names USER)"
)


def _as_user(**options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The ``--as USER`` option (required unless a default is given)."""
    options.setdefault("required", "default" not in options)
    options.setdefault("help", IMPERSONATE)
    return click.option("--as", "username", metavar="USER", **options)


def _actor(state: _State, username: str) -> identity.Actor:
    with state.db.read() as session:
        return identity.get_actor(session, username)


def _json_arg(text: str) -> dict[str, Any]:
    """``--data``: a JSON object of finite numbers and Unicode text, nested at most ``MAX_DATA_DEPTH`` levels."""
    too_deep = InvalidInputError(
        f"--data 嵌套超过 {MAX_DATA_DEPTH} 层 / --data is nested deeper than {MAX_DATA_DEPTH} levels"
    )
    try:
        value = json.loads(text, parse_constant=_not_finite, parse_float=_finite)
    except RecursionError as exc:
        raise too_deep from exc
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"--data 不是合法 JSON / --data is not valid JSON: {exc}") from exc
    except _NotFiniteError as exc:
        raise InvalidInputError(f"--data 中的数字无效 / --data holds {exc}") from exc
    except ValueError as exc:  # an integer Python refuses to read
        digits = sys.get_int_max_str_digits()
        raise InvalidInputError(
            f"--data 中有超过 {digits} 位的整数 / --data holds an integer of more than {digits} digits"
        ) from exc
    if not isinstance(value, dict):
        raise InvalidInputError("--data 必须是 JSON 对象 / --data must be a JSON object")
    if _depth(value) > MAX_DATA_DEPTH:
        raise too_deep
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            "--data 含有不成对的代理字符 / --data holds text that is not Unicode "
            f"(an unpaired surrogate {_shown(exc.object[exc.start : exc.end])})"
        ) from exc
    return value


class _NotFiniteError(ValueError):
    """A JSON number that would be infinite or NaN (the databases' JSON has neither)."""


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotFiniteError(f"{text}, beyond any floating-point number")
    return number


def _not_finite(text: str) -> float:
    raise _NotFiniteError(f"{text}, which is not a number")


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (without recursion)."""
    deepest, pending = 0, [(value, 1)]
    while pending and deepest <= MAX_DATA_DEPTH:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children: Sequence[Any] = list(item.values()) if isinstance(item, dict) else item
            pending.extend((child, level + 1) for child in children)
    return deepest


@click.group(cls=_Opsflow)
@click.option(
    "--database",
    "database_url",
    default=None,
    help="SQLAlchemy URL (default: OPSFLOW_DATABASE_URL, else the SQLite file instance/opsflow.sqlite)",
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """opsflow: the operations department's procedures as executable BPMN.

    An operator's tool, for someone with shell access to the server (and so to its database
    and settings). --as USER is an impersonation: it acts as USER without asking for a
    password. The engine still refuses what it would refuse USER (claiming another role's
    task, completing someone else's, starting a process USER's role may not start,
    deploying without the PO or ADMIN role), and the audit trail names USER as the one
    who acted.

    Settings come from the environment (OPSFLOW_DATABASE_URL, OPSFLOW_SECRET_KEY,
    OPSFLOW_HTTPS, OPSFLOW_PROCESSES_DIR); --database overrides the database URL.
    """
    settings = Settings.from_environment()
    if database_url is not None:
        settings = replace(settings, database_url=database_url)
    ctx.obj = state = _State(settings)
    ctx.call_on_close(state.close)


@main.command()
@click.pass_obj
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
@click.argument("paths", nargs=-1, required=True, type=_ExistingPath())
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
@click.argument("path", type=_ExistingPath())
@_as_user(
    default="system",
    show_default=True,
    help="the user deploying, who needs the role PO or ADMIN (an impersonation: no password is asked)",
)
@click.pass_obj
def deploy(state: _State, path: Path, username: str) -> None:
    """Deploy a BPMN file (or a folder) as new versions.

    As `system` (the default) or as a user holding PO (process owner) or ADMIN; anyone else
    is refused, and the refusal is audited.
    """
    actor = identity.SYSTEM if username == "system" else _actor(state, username)
    batch = registry.read_directory(path) if path.is_dir() else conformance.files_for(path)
    deployed = registry.deploy_files(state.db, actor, batch)
    for version in deployed:
        click.echo(
            f"{'deployed' if version.created else 'unchanged'}: {version.key} v{version.version}"
        )


@main.command()
@click.argument("key")
@_as_user()
@click.option("--data", default="{}", help="start data as a JSON object")
@click.option(
    "--business-key",
    default=None,
    help=f"the case's business key (at most {catalogue.BUSINESS_KEY_LENGTH} characters)",
)
@click.pass_obj
def start(state: _State, key: str, username: str, data: str, business_key: str | None) -> None:
    """Start a process instance as USER, if USER may start it (as in the web's catalogue)."""
    summary = catalogue.start(
        state.db, _actor(state, username), key, _json_arg(data), business_key=business_key
    )
    click.echo(
        f"instance {summary.id}: {summary.status}; open tasks: {list(summary.open_task_ids)}"
    )


@main.command()
@_as_user()
@click.option("--tab", type=click.Choice([inbox.MINE, inbox.CLAIMABLE, inbox.DONE]), default=None)
@click.pass_obj
def tasks(state: _State, username: str, tab: str | None) -> None:
    """List USER's tasks (assigned to them, then their roles' unclaimed ones)."""
    actor = _actor(state, username)
    for current in [tab] if tab else [inbox.MINE, inbox.CLAIMABLE]:
        for row in inbox.list_tasks(state.db, actor, current, limit=500):
            due = f" due {row.due_at:%Y-%m-%d %H:%M}" if row.due_at else ""
            click.echo(
                f"[{current}] task {row.id}: {row.name} ({row.process_key} #{row.instance_id}, role {row.candidate_role}){due}"
            )


@main.command()
@click.argument("task_id", type=ROW_ID)
@_as_user()
@click.pass_obj
def claim(state: _State, task_id: int, username: str) -> None:
    """Claim a task of USER's role for USER."""
    runtime.claim_task(state.db, _actor(state, username), task_id)
    click.echo(f"task {task_id} claimed by {username}")


@main.command()
@click.argument("task_id", type=ROW_ID)
@_as_user()
@click.option("--data", default="{}", help="the form data as a JSON object")
@click.pass_obj
def complete(state: _State, task_id: int, username: str, data: str) -> None:
    """Complete a task as USER with its form data (checked against the task's form)."""
    summary = runtime.complete_task(state.db, _actor(state, username), task_id, _json_arg(data))
    click.echo(
        f"task {task_id} completed; instance {summary.id}: {summary.status}; open tasks: {list(summary.open_task_ids)}"
    )


@main.command()
@click.argument("instance_id", type=ROW_ID)
@click.pass_obj
def instance(state: _State, instance_id: int) -> None:
    """Show an instance: state, open tasks, waits and history (the operator's view: any case)."""
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


# --- outside answers and failed cases ---


@main.command()
@click.argument("name")
@click.option("--instance", "instance_id", type=ROW_ID, default=None, help="the case's id")
@click.option("--business-key", default=None, help="the running case's business key")
@_as_user()
@click.option("--data", default="{}", help="the answer as a JSON object (the message's form)")
@click.pass_obj
def message(
    state: _State,
    name: str,
    instance_id: int | None,
    business_key: str | None,
    username: str,
    data: str,
) -> None:
    """Deliver an outside party's answer NAME to the case waiting for it, as USER (its liaison)."""
    if (instance_id is None) == (business_key is None):
        raise InvalidInputError(
            "请给出 --instance 或 --business-key 之一 / give one of --instance or --business-key"
        )
    summary = runtime.correlate_message(
        state.db,
        _actor(state, username),
        name,
        _json_arg(data),
        instance_id=instance_id,
        business_key=business_key,
    )
    click.echo(
        f"message {name} delivered; instance {summary.id}: {summary.status}; open tasks: {list(summary.open_task_ids)}"
    )


@main.command()
@_as_user(default="system", show_default=True, help="the user asking: ADMIN or OPS")
@click.pass_obj
def failed(state: _State, username: str) -> None:
    """List the cases in the error state (ADMIN and OPS): element, message, since when."""
    actor = identity.SYSTEM if username == "system" else _actor(state, username)
    for case in failures.failed_cases(state.db, actor):
        click.echo(
            f"instance {case.id}: {case.process_key} {case.title} [{case.element}] {case.message} since {case.since}"
        )


@main.command()
@click.argument("instance_id", type=ROW_ID)
@_as_user()
@click.pass_obj
def retry(state: _State, instance_id: int, username: str) -> None:
    """Run a failed case's step again once its cause is fixed (ADMIN, PO, OPS)."""
    summary = runtime.retry_instance(state.db, _actor(state, username), instance_id)
    click.echo(
        f"instance {summary.id}: {summary.status}; open tasks: {list(summary.open_task_ids)}"
    )


@main.command()
@click.argument("instance_id", type=ROW_ID)
@click.option("--reason", required=True, help="why the case is cancelled (audited)")
@_as_user()
@click.pass_obj
def cancel(state: _State, instance_id: int, reason: str, username: str) -> None:
    """Cancel a case with a reason (its starter, DM, ADMIN; a failed case also OPS)."""
    summary = runtime.cancel_instance(state.db, _actor(state, username), instance_id, reason)
    click.echo(f"instance {summary.id}: {summary.status}")


@main.group(name="audit")
def audit_group() -> None:
    """The audit trail."""


@audit_group.command()
@click.pass_obj
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
def worker(state: _State, interval: float, once: bool) -> None:
    """Fire due timers, start periodic processes, remind of deadlines, send the e-mail outbox."""
    mailer = notifications.Mailer.from_settings(state.settings)
    if once:
        click.echo(f"fired: {timers.run_once(state.db, mailer=mailer)}")
        return
    click.echo("worker running; Ctrl-C to stop")
    timers.run_forever(state.db, interval, mailer=mailer)


@main.command(name="conformance")
@click.argument("folder", type=_ExistingPath(folder=True))
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
