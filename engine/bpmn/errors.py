"""SpiffWorkflow's exceptions translated into engine errors that name the file and BPMN element."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException

from engine.errors import (
    DefinitionProblem,
    InvalidDefinitionError,
    OpsflowError,
    ScriptError,
    ScriptFailedError,
)


def invalid(source: str, element_id: str | None, message: str) -> InvalidDefinitionError:
    problem = DefinitionProblem(source, element_id, message)
    return InvalidDefinitionError(str(problem), [problem])


@contextmanager
def translated_parse_errors(source: str) -> Iterator[None]:
    """SpiffWorkflow's parse errors as InvalidDefinitionError naming file, element and line."""
    try:
        yield
    except OpsflowError:
        raise
    except ValidationException as exc:
        where = exc.file_name or source
        message = f"{exc.args[0] if exc.args else exc} ({exc.tag}, line {exc.line_number})"
        raise invalid(where, exc.id or None, message) from exc
    except Exception as exc:  # SpiffWorkflow raises bare KeyError/AttributeError on odd files
        raise invalid(
            source, None, f"无法解析 / cannot parse: {type(exc).__name__}: {exc}"
        ) from exc


@contextmanager
def translated_run_errors() -> Iterator[None]:
    """Anything a running workflow raises becomes a ScriptError naming the element."""
    try:
        yield
    except OpsflowError:
        raise
    except Exception as exc:
        raise _script_error(exc) from exc


def _script_error(exc: BaseException) -> ScriptError:
    task = getattr(exc, "task", None)
    element = None
    if task is not None:
        element = task.task_spec.bpmn_id or task.task_spec.name
    cause = _sandbox_cause(exc)
    if isinstance(cause, ScriptError):
        return type(cause)(str(cause), element)
    if isinstance(exc, WorkflowException | SpiffWorkflowException):
        return ScriptFailedError(_spiff_message(exc), element)
    return ScriptFailedError(f"{type(exc).__name__}: {exc}", element)


def _sandbox_cause(exc: BaseException) -> BaseException | None:
    """What the sandbox raised, found down the chain SpiffWorkflow wraps it in (implicitly chained)."""
    seen: BaseException | None = exc
    for _ in range(10):
        seen = (seen.__cause__ or seen.__context__) if seen is not None else None
        if seen is None or isinstance(seen, ScriptError):
            return seen
    return None


def _spiff_message(exc: BaseException) -> str:
    notes = "; ".join(getattr(exc, "__notes__", []))
    base = str(exc.args[0]) if exc.args else str(exc)
    return f"{base} ({notes})" if notes else base
