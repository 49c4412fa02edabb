"""Domain errors: what went wrong, in the department's terms, with no HTTP codes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class OpsflowError(Exception):
    """Base of every error the engine raises on purpose."""


class NotFoundError(OpsflowError):
    """A user, process, instance or task that does not exist."""


class PermissionDeniedError(OpsflowError):
    """The actor may not do this (missing role, segregation of duties)."""


class ConflictError(OpsflowError):
    """Someone else changed the same thing first (task already completed, stale version)."""


class RateLimitedError(OpsflowError):
    """Too many attempts in a short time (logins from one address); try again later."""


class InvalidInputError(OpsflowError):
    """Submitted data failed validation; ``field_errors`` maps each field to its messages."""

    def __init__(self, message: str, field_errors: Mapping[str, Sequence[str]] | None = None):
        super().__init__(message)
        self.field_errors: dict[str, list[str]] = {
            name: list(messages) for name, messages in (field_errors or {}).items()
        }


class InvalidDefinitionError(OpsflowError):
    """A BPMN, DMN or form definition that cannot be deployed; ``problems`` lists each one."""

    def __init__(self, message: str, problems: Sequence[DefinitionProblem] | None = None):
        super().__init__(message)
        self.problems: list[DefinitionProblem] = list(problems or [])


@dataclass(frozen=True)
class DefinitionProblem:
    """One problem in a definition file: which file, which element, what is wrong."""

    file: str
    element_id: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.element_id}" if self.element_id else self.file
        return f"{where}: {self.message}"


class ScriptError(OpsflowError):
    """A diagram expression or script that cannot run; ``element_id`` names the BPMN element."""

    def __init__(self, message: str, element_id: str | None = None):
        super().__init__(message)
        self.element_id = element_id


class ScriptRejectedError(ScriptError):
    """A diagram expression or script tried something the sandbox does not allow."""


class ScriptFailedError(ScriptError):
    """A diagram expression or script raised an error while it ran (bad data, a typo)."""
