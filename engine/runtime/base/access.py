"""Who may act on a task and who may read a case: the one check every service and view uses.

Acting on a task (complete it, save a draft, attach a file, open its page, delegate it) needs
the task's role or its personal assignment, no recusal (``excludeUsers``) and no breach of
segregation of duties; taking it (claim, or being the colleague it is delegated to) needs the
same of the person who would hold it. A person recused from any task of a case reads nothing
of that case, whatever their role.
"""

from __future__ import annotations

from engine.errors import PermissionDeniedError
from engine.people import assignment
from engine.people.identity import Actor
from engine.runtime.base import caches
from engine.storage import store
from engine.storage.db import Database
from engine.storage.store import InstanceRow, TaskRow
from engine.storage.txn import Txn

CASE_READERS = ("PO", "ADMIN", "CMP", "DM", "GM")
"""Roles that may read any case they are not recused from (process owners, administrators,
compliance, the managers)."""
TASK_READERS = ("PO", "ADMIN", "CMP")
"""Roles that may read any finished task they are not recused from."""


def check_may_act(
    db: Database,
    tx: Txn,
    actor: Actor,
    task: TaskRow,
    instance: InstanceRow,
    *,
    taking: bool = False,
) -> caches.Definition:
    """:raise PermissionDeniedError: the actor may not work this task (``taking``: take it over).

    Returns the task's deployed version, which the check reads anyway.
    """
    holder = None if taking and task.assignee_id != actor.id else task.assignee_id
    assignment.check_may_work(actor, task.candidate_role, holder)
    assignment.check_not_excluded(actor, task.excluded)
    definition = caches.definition(db, tx, instance.definition_id)
    rules = definition.rules(task.bpmn_id)
    if rules.segregated:
        done_by = store.completers(tx, instance.id)
        submitters = {instance.started_by or 0} | {
            user for bpmn_id in definition.submitting_tasks for user in done_by.get(bpmn_id, ())
        }
        assignment.check_segregation(actor, rules.properties, submitters, done_by)
    return definition


def check_may_read_task(
    db: Database, tx: Txn, actor: Actor, task: TaskRow, instance: InstanceRow
) -> None:
    """An open task: whoever may act on it. A finished one: its completer, whoever could have
    worked it, and the task reader roles. Nobody recused from the case.

    :raise PermissionDeniedError:
    """
    check_not_recused(tx, actor, instance.id)
    if task.status == store.OPEN:
        check_may_act(db, tx, actor, task, instance)
    elif task.completed_by != actor.id and not actor.has_role(*TASK_READERS):
        assignment.check_may_work(actor, task.candidate_role, task.completed_by)


def check_may_read_case(tx: Txn, actor: Actor, instance: InstanceRow) -> None:
    """Whoever started the case or took part in it, and the case reader roles; never the recused.

    :raise PermissionDeniedError:
    """
    check_not_recused(tx, actor, instance.id)
    if instance.started_by == actor.id or actor.has_role(*CASE_READERS):
        return
    if not store.took_part(tx, instance.id, actor.id, actor.roles):
        raise PermissionDeniedError(
            "您未参与此流程，无权查看 / you may not read a case you have no part in"
        )


def check_not_recused(tx: Txn, actor: Actor, instance_id: int) -> None:
    """:raise PermissionDeniedError: the actor must recuse themselves from a task of this case."""
    assignment.check_not_excluded(actor, store.case_exclusions(tx, instance_id))
