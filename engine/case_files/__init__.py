"""Service-task operators: the named steps a diagram may call that read or write case files.

A diagram calls one with a service task::

    <bpmn:serviceTask id="hold_archives" name="冻结相关档案">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="archive_hold" resultVariable="hold">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="related_ref" type="str" value="policy_no"/>
            ...

Each parameter value is a sandbox expression over the task's data; the result goes into the
``resultVariable``. The registry refuses unknown operators and missing or unknown parameters at
deploy time (``problems``). An operator runs inside the step's transaction, so what it writes
commits or rolls back with the instance; each call runs under a savepoint, so a failing call
leaves nothing half-written and puts the instance into the error state naming the task. Every
call is audited (``operator_called``: operator, parameters, result) after the step's own events.

The registry is ``operators``; the operators live in ``deadlines`` (the paused clock), ``archives``
(catalogue and holds), ``customers`` (customer files and policies), ``budget`` (the expense budget
ledger), ``invoices`` and ``notifications`` (a diagram's reminders).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

# the operators register themselves with engine.case_files.operators when imported
from engine.case_files import (
    archives,
    budget,
    customers,
    deadlines,
    invoices,
    notifications,
    operators,
)
from engine.case_files.operators import OPERATORS, Call, Operator, operator, problems, step

__all__ = [
    "OPERATORS",
    "Call",
    "Operator",
    "archives",
    "budget",
    "customers",
    "deadlines",
    "invoices",
    "load_demo",
    "notifications",
    "operator",
    "operators",
    "problems",
    "step",
]


def load_demo(session: Session, path: Path) -> None:
    """The demo customers, policies and archive catalogue (``opsflow init``); idempotent."""
    customers.load_demo(session, path)
    archives.load_demo(session, path)
    budget.load_demo(session, path)
