"""The operator registry: register, run inside a step under a savepoint, audit; deploy-time checks.

How a diagram calls an operator: ``engine.case_files``.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine import bpmn, forms
from engine.errors import OpsflowError, ScriptFailedError
from engine.people.identity import Actor
from engine.storage.txn import Txn


@dataclass
class Call:
    """What an operator gets: the step's transaction, who acts, the instance and the task."""

    tx: Txn
    actor: Actor
    instance_id: int
    task: Any  # the SpiffWorkflow task of the service task (its data, its workflow)

    @property
    def element_id(self) -> str:
        return str(self.task.task_spec.bpmn_id or self.task.task_spec.name)

    @property
    def workflow(self) -> Any:
        return self.task.workflow

    def audit(self, type: str, payload: Mapping[str, Any]) -> None:
        """An audit event of this call, written after the step's own events."""
        _current().events.append((type, self.element_id, dict(payload)))


Function = Callable[..., Any]


@dataclass(frozen=True)
class Operator:
    name: str
    function: Function  # (call, **params) -> JSON-compatible result
    required: frozenset[str]
    optional: frozenset[str] = frozenset()


OPERATORS: dict[str, Operator] = {}


def operator(
    name: str, *, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Callable[[Function], Function]:
    """Register ``function`` as the operator ``name`` (module import time)."""

    def register(function: Function) -> Function:
        OPERATORS[name] = Operator(name, function, frozenset(required), frozenset(optional))
        return function

    return register


# --- running operators inside a step ---


@dataclass
class StepContext:
    tx: Txn
    actor: Actor
    instance_id: int
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


_STEP: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "opsflow_operator_step", default=None
)


def _current() -> StepContext:
    context = _STEP.get()
    if context is None:
        raise OpsflowError(
            "服务任务只能在流程步骤中运行 / operators run only inside an engine step"
        )
    return context


@contextlib.contextmanager
def step(tx: Txn, actor: Actor, instance_id: int) -> Iterator[StepContext]:
    """Operators called while the block runs use this transaction; their events are collected."""
    context = StepContext(tx, actor, instance_id)
    token = _STEP.set(context)
    try:
        yield context
    finally:
        _STEP.reset(token)


def _run(task: Any, name: str, params: Mapping[str, Any]) -> Any:
    context = _current()
    call = Call(context.tx, context.actor, context.instance_id, task)
    found = OPERATORS.get(name)
    if found is None:  # the registry refuses these at deploy; an old stored version may hold one
        raise ScriptFailedError(f"未知的服务操作 / unknown operator '{name}'", call.element_id)
    tx = context.tx
    # what a failing call must leave as it found: its rows (the savepoint), the task's data and
    # the waiting timers' due times (in memory, so a retry starts from the same place)
    saved_data = copy.deepcopy(dict(task.data))
    saved_timers = bpmn.timer_values(task.workflow)
    with tx.savepoint("opsflow_operator"):
        try:
            result = found.function(call, **params)
        except BaseException as exc:
            task.data.clear()
            task.data.update(saved_data)
            bpmn.restore_timer_values(task.workflow, saved_timers)
            if not isinstance(exc, Exception):
                raise
            raise ScriptFailedError(f"{name}: {exc}", call.element_id) from exc
    call.audit(
        "operator_called",
        {"operator": name, "params": _masked(forms.to_json_data(dict(params))), "result": result},
    )
    return result


def _masked(value: Any) -> Any:
    """Identity numbers in an audited value show their first six and last four characters."""
    if isinstance(value, Mapping):
        return {
            k: _mask(v) if k.endswith("id_no") and isinstance(v, str) else _masked(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def _mask(id_no: str) -> str:
    return id_no if len(id_no) <= 10 else id_no[:6] + "*" * (len(id_no) - 10) + id_no[-4:]


bpmn.set_service_handler(_run)


# --- deploy-time checks ---


def problems(service_task: bpmn.ServiceTaskSpec) -> list[str]:
    """What is wrong with a service task's operator and parameters (empty when nothing)."""
    found = OPERATORS.get(service_task.operator)
    if found is None:
        known = ", ".join(sorted(OPERATORS))
        return [
            f"未知的服务操作 '{service_task.operator}'（可用：{known}）/ unknown operator "
            f"'{service_task.operator}' (known: {known})"
        ]
    given = set(service_task.params)
    missing = sorted(found.required - given)
    unknown = sorted(given - found.required - found.optional)
    return [
        *(
            f"服务操作 {found.name} 缺少参数 '{name}' / operator {found.name} needs parameter '{name}'"
            for name in missing
        ),
        *(
            f"服务操作 {found.name} 没有参数 '{name}' / operator {found.name} has no parameter '{name}'"
            for name in unknown
        ),
    ]


# the operators register themselves on import
