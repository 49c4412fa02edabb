"""Lane/property → candidate role or assignee; who may work a task; segregation of duties.

A user task's lane names the role that may do it (by role code or by its Chinese or English
name); a ``role`` property overrides the lane. Properties a diagram may set on a user task
(``spiffworkflow:properties``):

- ``formKey``: the form in ``forms/`` the task shows;
- ``assignee``: ``starter``, ``manager_of(starter)`` or ``data.<field>`` naming a username;
- ``approval``: ``true`` when the task approves a request: its submitter may never complete it;
- ``segregateFrom``: comma-separated BPMN task ids whose completers may not complete this one;
- ``deadline``: e.g. ``3 workdays``, ``15 days``, ``48 hours``, counted from the task's start;
- ``dueAt``: the name of a data field holding the due time (an ISO datetime), e.g. a complaint's
  legal deadline computed by the diagram;
- ``sameLevelAssignee``: ``manager_of(starter)``: when the person who started the case holds the
  task's role, the task goes to their manager instead of the role's queue (an approval level
  equal to the applicant moves up);
- ``excludeUsers``: comma-separated ``data.<field>`` (a username or a list of them) and
  ``manager_of(data.<field>)``: people who may never work the task (回避: the staff member a
  complaint is about and their direct lead; the seller of a policy being called back).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.errors import InvalidInputError, PermissionDeniedError
from engine.people.identity import ROLES, Actor
from engine.storage import users
from engine.storage.txn import Txn
from engine.timekeeping import workdays

_ROLE_BY_NAME = {name: code for code, zh, en in ROLES for name in (code, zh, en)}


def role_for_lane(lane: str | None, properties: Mapping[str, str]) -> str | None:
    """The role code a task belongs to, from its ``role`` property or its lane's name."""
    name = properties.get("role") or lane
    if name is None:
        return None
    return _ROLE_BY_NAME.get(name.strip())


@dataclass(frozen=True)
class AssigneeRule:
    """How a task's personal assignee is found; ``kind`` is starter | manager_of_starter | data."""

    kind: str
    field: str | None = None


def parse_assignee(expression: str | None) -> AssigneeRule | None:
    """:raise InvalidInputError: an expression opsflow does not know."""
    if not expression:
        return None
    text = expression.replace(" ", "")
    if text == "starter":
        return AssigneeRule("starter")
    if text == "manager_of(starter)":
        return AssigneeRule("manager_of_starter")
    if text.startswith("data.") and text[5:].isidentifier():
        return AssigneeRule("data", text[5:])
    raise InvalidInputError(
        "未知的处理人表达式",
        {"assignee": [f"未知的处理人表达式 / unknown assignee expression: {expression}"]},
    )


def is_starter_rule(expression: str | None) -> bool:
    """Whether an ``assignee`` expression gives the task to the person who started the case."""
    return (expression or "").replace(" ", "") == "starter"


def segregated_from(properties: Mapping[str, str]) -> tuple[bool, frozenset[str]]:
    """(whether the submitter is excluded, BPMN ids whose completers are excluded)."""
    approval = properties.get("approval", "").lower() == "true"
    others = frozenset(
        p.strip() for p in properties.get("segregateFrom", "").split(",") if p.strip()
    )
    return approval, others


def check_may_work(actor: Actor, candidate_role: str | None, assignee_id: int | None) -> None:
    """:raise PermissionDeniedError: the task is someone else's, or needs a role the actor lacks."""
    if assignee_id is not None:
        if assignee_id != actor.id:
            raise PermissionDeniedError(
                "该任务已分配给他人 / this task is assigned to someone else"
            )
        return
    # a task of no role and no assignee exists only in a diagram deployed with open lanes
    if candidate_role is not None and not actor.has_role(candidate_role):
        raise PermissionDeniedError(
            f"需要角色 {candidate_role} / this task needs the role {candidate_role}"
        )


def check_segregation(
    actor: Actor,
    properties: Mapping[str, str],
    submitters: Collection[int],
    completers: Mapping[str, Collection[int]],
) -> None:
    """Segregation of duties: the submitter never approves; excluded duties stay with others.

    ``submitters`` are the request's submitters: whoever started the case and whoever completed
    a task the diagram gives the starter (``assignee=starter``: the request's own forms).
    ``completers`` maps BPMN task ids of this instance to the users who completed them.
    :raise PermissionDeniedError: naming the rule that was broken.
    """
    approval, excluded = segregated_from(properties)
    if approval and actor.id in submitters:
        raise PermissionDeniedError(
            "申请人不得审批自己的申请 / the submitter may not approve their own request"
        )
    for bpmn_id in sorted(excluded):
        if actor.id in completers.get(bpmn_id, ()):
            raise PermissionDeniedError(
                f"职责分离：您已处理过 {bpmn_id}，不得再处理此任务 / segregation of duties: you did {bpmn_id}"
            )


def data_assignee(rule: AssigneeRule, data: Mapping[str, Any]) -> str | None:
    """The username a ``data.<field>`` rule points at, if the field holds one."""
    value = data.get(rule.field or "")
    return value if isinstance(value, str) and value else None


def due_at(
    properties: Mapping[str, str], now: datetime, data: Callable[[], Mapping[str, Any]]
) -> datetime | None:
    """A new task's due time: its ``deadline`` counted from now, or the ``dueAt`` field's value."""
    if properties.get("deadline"):
        return workdays.deadline_from(now, properties["deadline"])
    field = properties.get("dueAt")
    value = data().get(field) if field else None
    if not isinstance(value, str) or not value:
        return None
    try:
        due = datetime.fromisoformat(value)
    except ValueError:
        return None
    return due if due.tzinfo else due.replace(tzinfo=workdays.CHINA_TZ)


@dataclass(frozen=True)
class Exclusion:
    """One ``excludeUsers`` item: the users named in ``field``, or their managers."""

    field: str
    managers: bool = False


def parse_exclusions(expression: str | None) -> tuple[Exclusion, ...]:
    """:raise InvalidInputError: an item that is neither ``data.x`` nor ``manager_of(data.x)``."""
    found = []
    for item in (expression or "").replace(" ", "").split(","):
        if not item:
            continue
        managers = item.startswith("manager_of(") and item.endswith(")")
        inner = item[len("manager_of(") : -1] if managers else item
        if not (inner.startswith("data.") and inner[5:].isidentifier()):
            raise InvalidInputError(
                "未知的回避表达式",
                {"excludeUsers": [f"未知的回避表达式 / unknown exclusion: {item}"]},
            )
        found.append(Exclusion(inner[5:], managers))
    return tuple(found)


def excluded_usernames(exclusion: Exclusion, data: Mapping[str, Any]) -> list[str]:
    """The usernames an exclusion's data field holds (one or a list)."""
    value = data.get(exclusion.field)
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, str) and v]


def check_not_excluded(actor: Actor, excluded: Collection[int]) -> None:
    """:raise PermissionDeniedError: the actor must stay away from this task (回避)."""
    if actor.id in excluded:
        raise PermissionDeniedError(
            "回避：您与本案有利害关系，不得处理此任务 / you must recuse yourself from this task "
            "(you, or someone you manage, is a party to the case)"
        )


def parse_same_level(expression: str) -> None:
    """:raise InvalidInputError: ``sameLevelAssignee`` other than ``manager_of(starter)``."""
    if expression.replace(" ", "") != "manager_of(starter)":
        raise InvalidInputError(
            "sameLevelAssignee 只支持 manager_of(starter)",
            {
                "sameLevelAssignee": [
                    f"只支持 manager_of(starter) / only manager_of(starter): {expression}"
                ]
            },
        )


# --- who a new task is for (the one resolver every assignee rule goes through) ---


@dataclass(frozen=True)
class Routing:
    """Where a new task goes: a person (``assignee``) or its role's queue (None); who must recuse."""

    assignee: int | None
    excluded: tuple[int, ...]


_CHAIN_LIMIT = 32  # an org chart deeper than this is a loop in the data


def nearest_active_manager(tx: Txn, user_id: int) -> int | None:
    """The user's manager, or while that one is inactive the next one up the org chart."""
    seen = {user_id}
    manager = users.manager_id(tx, user_id)
    while manager is not None and manager not in seen and len(seen) < _CHAIN_LIMIT:
        if users.is_active(tx, manager):
            return manager
        seen.add(manager)
        manager = users.manager_id(tx, manager)
    return None


def route(
    tx: Txn,
    properties: Mapping[str, str],
    *,
    starter_id: int | None,
    role: str | None,
    data: Callable[[], Mapping[str, Any]],
) -> Routing:
    """Resolve a new task's assignee rules to an active person, or leave it to the role's queue.

    - ``starter``: the starter while active, else their nearest active manager;
    - ``manager_of(starter)`` (and ``sameLevelAssignee`` when the starter holds the task's role):
      the nearest active manager up the org chart;
    - ``data.<field>``: the named user if active and holding the task's role, else the queue;
    - nobody is handed a task they must recuse themselves from (``excludeUsers``).
    """
    excluded = excluded_ids(tx, properties, data)
    assignee = _assignee(tx, properties, starter_id, role, data)
    same_level = bool(role and starter_id and properties.get("sameLevelAssignee"))
    # an approval level the applicant holds moves up the org chart
    if assignee is None and same_level and role in users.role_codes(tx, starter_id or 0):
        assignee = nearest_active_manager(tx, starter_id or 0)
    return Routing(None if assignee in excluded else assignee, excluded)


def _assignee(
    tx: Txn,
    properties: Mapping[str, str],
    starter_id: int | None,
    role: str | None,
    data: Callable[[], Mapping[str, Any]],
) -> int | None:
    rule = parse_assignee(properties.get("assignee"))
    if rule is None or starter_id is None:
        return None
    if rule.kind == "starter":
        return (
            starter_id
            if users.is_active(tx, starter_id)
            else nearest_active_manager(tx, starter_id)
        )
    if rule.kind == "manager_of_starter":
        return nearest_active_manager(tx, starter_id)
    username = data_assignee(rule, data())
    user_id = users.user_id(tx, username) if username else None
    if user_id is None or not users.is_active(tx, user_id):
        return None
    # someone without the task's role: the role's queue gets it
    return user_id if role is None or role in users.role_codes(tx, user_id) else None


def excluded_ids(
    tx: Txn, properties: Mapping[str, str], data: Callable[[], Mapping[str, Any]]
) -> tuple[int, ...]:
    """Ids of the users an ``excludeUsers`` rule keeps away from the task (active or not)."""
    ids: set[int] = set()
    for exclusion in parse_exclusions(properties.get("excludeUsers")):
        for username in excluded_usernames(exclusion, data()):
            user_id = users.user_id(tx, username)
            if user_id is not None and exclusion.managers:
                user_id = users.manager_id(tx, user_id)
            if user_id is not None:
                ids.add(user_id)
    return tuple(sorted(ids))
