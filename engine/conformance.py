"""The conformance walk and file validation: deploy a folder's BPMN/DMN/forms into a throwaway
database exactly as ``registry.deploy`` would, then run each process with its user tasks
completed automatically and its timers moved forward, and report what happened per file."""

from __future__ import annotations

import tempfile
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine import forms, runtime
from engine.definitions import registry
from engine.errors import DefinitionProblem, InvalidDefinitionError, InvalidInputError
from engine.people import identity
from engine.people.identity import Actor
from engine.runtime.services import inbox, timers
from engine.storage.db import Database
from engine.timekeeping import clock

COMPLETED = "ran to completion"
REJECTED = "rejected"
WAITING_MESSAGE = "waiting on a message"
WAITING = "waiting"
FAILED = "failed at run time"
PARSED = "parsed"
CRASHED = "crashed"
_ROUNDS = 200
_WALK_START = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)


@dataclass(frozen=True)
class FileResult:
    """What the walk found for one file."""

    file: str
    outcome: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.file}: {self.outcome}" + (f" — {self.detail}" if self.detail else "")


# --- files and throwaway databases ---


def _is_bpmn(path: Path) -> bool:
    return path.name.endswith((".bpmn", ".bpmn20.xml", ".bpmn2"))


def files_for(path: Path) -> list[registry.ProcessFiles]:
    """One BPMN file with the DMN files and forms beside it (its folder and ../forms)."""
    batch = [f for f in registry.read_directory(path.parent) if f.source == path.name]
    if not batch:
        raise InvalidDefinitionError(f"{path}: 不是 BPMN 文件 / not a BPMN file")
    return batch


def _scratch_database(folder: Path) -> tuple[Database, Actor]:
    """A throwaway SQLite database with the roles and one user who holds all of them."""
    db = Database(f"sqlite:///{folder / 'conformance.sqlite'}")
    db.upgrade()
    with db.unit_of_work() as session:
        identity.ensure_roles(session)
        everyone = identity.create_user(
            session,
            "conformance",
            "conformance walk",
            password_hash="!",  # noqa: S106 - not a hash: nobody can log in as the walk's user
            roles=[r[0] for r in identity.ROLES],
        )
    return db, everyone


def validate_paths(paths: Iterable[Path]) -> list[DefinitionProblem]:
    """Check BPMN, DMN and form files as deploy would (in a throwaway database); every problem found."""
    problems: list[DefinitionProblem] = []
    batch: list[registry.ProcessFiles] = []
    for path in paths:
        for file in sorted(path.iterdir()) if path.is_dir() else [path]:
            problems.extend(_collect(file, batch))
    with tempfile.TemporaryDirectory() as scratch:
        db, _everyone = _scratch_database(Path(scratch))
        try:
            with db.unit_of_work() as session:
                registry.deploy_all(session, identity.SYSTEM, batch)
        except InvalidDefinitionError as exc:
            problems.extend(exc.problems)
        db.dispose()
    return problems


def _collect(file: Path, batch: list[registry.ProcessFiles]) -> list[DefinitionProblem]:
    try:
        if file.suffix == ".json":
            forms.load_form(file.read_bytes(), str(file))
        elif file.suffix == ".dmn":
            return registry.check_dmn(registry.read_source(file), file.name)
        elif _is_bpmn(file):
            batch.extend(f for f in registry.read_directory(file.parent) if f.source == file.name)
    except InvalidDefinitionError as exc:
        return exc.problems
    return []


# --- the walk ---


def walk(folder: Path) -> list[FileResult]:
    """Deploy every BPMN file of the folder (callees first, DMN tables beside them) and run each."""
    results: list[FileResult] = []
    with tempfile.TemporaryDirectory() as scratch:
        db, everyone = _scratch_database(Path(scratch))
        frozen = clock.FrozenClock(_WALK_START)
        clock.use(frozen)
        try:
            results.extend(_dmn_results(folder))
            for files in registry.callee_first(_open_lanes(registry.read_directory(folder))):
                results.append(
                    _guarded(
                        files.source,
                        lambda files=files: _deploy_and_run(db, everyone, files, frozen),
                    )
                )
        finally:
            clock.use(None)
            db.dispose()
    return sorted(results, key=lambda r: r.file)


def _open_lanes(batch: list[registry.ProcessFiles]) -> list[registry.ProcessFiles]:
    """Foreign test models name lanes after their own organisations: let anyone do their tasks."""
    return [
        registry.ProcessFiles(f.source, f.bpmn_xml, f.dmn_files, f.forms, open_lanes=True)
        for f in batch
    ]


def _dmn_results(folder: Path) -> list[FileResult]:
    results = []
    for path in sorted(folder.glob("*.dmn")):
        problems = _guarded_problems(path)
        if isinstance(problems, FileResult):
            results.append(problems)
        elif problems:
            results.append(FileResult(path.name, REJECTED, "; ".join(p.message for p in problems)))
        else:
            results.append(FileResult(path.name, PARSED, "decision table checked"))
    return results


def _guarded_problems(path: Path) -> list[DefinitionProblem] | FileResult:
    try:
        return registry.check_dmn(path.read_text(encoding="utf-8"), path.name)
    except Exception as exc:  # the walk's one purpose is to find these: report, never die
        return FileResult(path.name, CRASHED, _crash(exc))


def _guarded(name: str, step: object) -> FileResult:
    try:
        return step()  # type: ignore[operator, no-any-return]
    except Exception as exc:  # the walk's one purpose is to find these: report, never die
        return FileResult(name, CRASHED, _crash(exc))


def _crash(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _deploy_and_run(
    db: Database, everyone: Actor, files: registry.ProcessFiles, frozen: clock.FrozenClock
) -> FileResult:
    try:
        with db.unit_of_work() as session:
            version = registry.deploy(session, identity.SYSTEM, files)
    except InvalidDefinitionError as exc:
        return FileResult(files.source, REJECTED, "; ".join(_short(p) for p in exc.problems))
    return _run(db, everyone, version.key, files.source, frozen)


def _short(problem: DefinitionProblem) -> str:
    return f"{problem.element_id}: {problem.message}" if problem.element_id else problem.message


def _run(
    db: Database, everyone: Actor, key: str, source: str, frozen: clock.FrozenClock
) -> FileResult:
    case = runtime.start_instance(db, everyone, key)
    for _ in range(_ROUNDS):
        view = runtime.get_instance(db, case.id)
        status = view.summary.status
        if status == runtime.COMPLETED:
            return FileResult(source, COMPLETED, f"deployed as {key} v1")
        if status == runtime.ERROR:
            return FileResult(source, FAILED, f"{view.summary.error_element}: {view.summary.error}")
        if not _advance(db, everyone, case.id, view, frozen):
            return _waiting(source, view)
    return FileResult(source, WAITING, f"still running after {_ROUNDS} rounds (a cycle or a loop)")


def _advance(
    db: Database,
    everyone: Actor,
    instance_id: int,
    view: runtime.InstanceView,
    frozen: clock.FrozenClock,
) -> bool:
    """Complete one open task, or move the clock to the next timer; False when nothing can move."""
    for row in inbox.open_tasks_of(db, instance_id):
        try:
            runtime.complete_task(db, everyone, row.id, {})
        except InvalidInputError:
            continue
        return True
    if view.waiting_timers:
        due = min(at for _, at in view.waiting_timers)
        frozen.set(max(frozen.at, due) + timedelta(seconds=1))
        timers.run_once(db)
        return True
    return False


def _waiting(source: str, view: runtime.InstanceView) -> FileResult:
    if view.waiting_messages:
        return FileResult(source, WAITING_MESSAGE, ", ".join(view.waiting_messages))
    return FileResult(
        source,
        WAITING,
        "no open task, message or timer can move it (a signal, a task needing form data, or a condition no branch meets)",
    )


# --- reports ---


def summary(results: list[FileResult]) -> str:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    return f"{len(results)} files: {parts}"


def markdown(results: list[FileResult], folder: Path) -> str:
    lines = [
        "# Conformance walk",
        "",
        f"`opsflow conformance {folder.name}` (`make conformance`): every BPMN file deployed through "
        "`registry.deploy` into a throwaway database (DMN tables beside them, callees first), then run with "
        "user tasks completed automatically and timers moved forward; DMN files checked on their own. "
        "Lanes that name no opsflow role are left open to any user for this walk only.",
        "",
        summary(results),
        "",
        "| file | outcome | detail |",
        "| --- | --- | --- |",
    ]
    for result in results:
        detail = result.detail.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{result.file}` | {result.outcome} | {detail} |")
    return "\n".join(lines) + "\n"
