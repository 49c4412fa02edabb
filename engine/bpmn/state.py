"""An instance's state without its spec: the serializer, full dumps and loads, incremental dumps (StateWriter)."""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import json
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from engine.bpmn.scripts import SCRIPT_ENGINE
from engine.bpmn.specs import CompiledProcess
from engine.config import verify_state
from engine.errors import OpsflowError


class _StateOnlyConverter(BpmnWorkflowConverter):  # type: ignore[misc]
    """Writes the instance's state without its spec, which lives once per process version."""

    def to_dict(self, workflow: Any) -> dict[str, Any]:
        dct: dict[str, Any] = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], compiled: CompiledProcess | None = None) -> Any:
        if compiled is None:
            raise OpsflowError("state restored without its process version")
        workflow = self.target_class(
            compiled.spec, dict(compiled.subprocess_specs), deserializing=True
        )
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _make_serializer() -> BpmnWorkflowSerializer:
    config = dict(SPIFF_CONFIG)
    config[BpmnWorkflow] = _StateOnlyConverter
    registry = BpmnWorkflowSerializer.configure(config)
    registry.register(
        decimal.Decimal, lambda v: {"value": str(v)}, lambda v: decimal.Decimal(v["value"])
    )
    registry.register(
        dt.date, lambda v: {"value": v.isoformat()}, lambda v: dt.date.fromisoformat(v["value"])
    )
    return BpmnWorkflowSerializer(registry)


_SERIALIZER = _make_serializer()


def dump_state(workflow: Any) -> str:
    """The instance's state as JSON, without the spec."""
    return str(_SERIALIZER.serialize_json(workflow))


def load_state(compiled: CompiledProcess, state: str) -> Any:
    """Restore an instance from ``dump_state`` output onto its process version's spec."""
    dct = json.loads(state)
    _SERIALIZER.migrate(dct)
    workflow = _SERIALIZER.registry.restore(dct, compiled=compiled)
    workflow.script_engine = (
        SCRIPT_ENGINE  # not serialized: the unsafe default must never come back
    )
    return workflow


# --- incremental dumps: only the tasks a step changed are serialized again ---

_ENCODER = _SERIALIZER._encoder_cls()
_IMMUTABLE = frozenset(
    {str, int, float, bool, type(None), decimal.Decimal, dt.date, dt.datetime, dt.time, UUID}
)
VERIFY_STATE = verify_state()  # read once, at import


def _snapshot(value: Any) -> Any:
    """A copy of task data deep enough that later changes to the original are noticed."""
    kind = type(value)
    if kind is dict:
        return {key: _snapshot(item) for key, item in value.items()}
    if kind is list:
        return [_snapshot(item) for item in value]
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value)


class _Piece:
    """One task's JSON with a snapshot of everything that JSON was made from."""

    __slots__ = ("changed_at", "children", "data", "internal", "json", "state", "task", "triggered")

    def __init__(self, task: Any, json_text: str):
        self.json = json_text
        self.task = task  # also keeps the object alive while the piece stands for it
        self.state = task._state
        self.changed_at = task.last_state_change
        self.triggered = task.triggered
        self.children = list(task._children)
        self.data = _snapshot(task.data)
        self.internal = _snapshot(task.internal_data)

    def holds(self, task: Any) -> bool:
        """Whether the task still has exactly what this piece was made from (data aside)."""
        return bool(
            self.state == task._state
            and self.changed_at == task.last_state_change
            and self.triggered == task.triggered
            and self.children == task._children
            and self.internal == task.internal_data
        )


_NO_DELTA = '{"updates":{},"deletions":[]}'


def _encoded(value: Any) -> str:
    return "{}" if value == {} else str(_ENCODER.encode(value))


class StateWriter:
    """``dump_state`` for one live workflow that re-serializes only the tasks that changed.

    The document is the one ``dump_state`` writes (``load_state`` reads either), assembled
    from per-task JSON pieces. A piece is made again when its task's state, last state
    change, triggered flag, children, internal data or data differ from its snapshot, or
    when its parent's data changed (SpiffWorkflow stores a task's data as a delta to its
    parent's). Values are compared with ``==``, as SpiffWorkflow's own delta encoding does.
    Pieces are keyed by the UUID's integer: ``UUID.__hash__`` is Python code.
    """

    def __init__(self) -> None:
        self._pieces: dict[int, _Piece] = {}
        self._heads: dict[int, str] = {}  # the part of a task's JSON that never changes

    def dump(self, workflow: Any) -> str:
        registry = _SERIALIZER.registry
        registry._encoder_mode = True
        try:
            seen: set[int] = set()
            subprocesses = ",".join(
                f'"{task_id}":{self._workflow_json(sub, seen, _subprocess_header(sub))}'
                for task_id, sub in workflow.subprocesses.items()
            )
            text = self._workflow_json(
                workflow, seen, _top_header(workflow), f',"subprocesses":{{{subprocesses}}}'
            )
        finally:
            registry._encoder_mode = False
        if len(self._pieces) > len(seen):
            self._pieces = {key: self._pieces[key] for key in seen}
            self._heads = {key: self._heads[key] for key in seen}
        if VERIFY_STATE and json.loads(text) != json.loads(dump_state(workflow)):
            raise OpsflowError("incremental state dump differs from the full dump")
        return text

    def _workflow_json(
        self, workflow: Any, seen: set[int], header: dict[str, Any], extra: str = ""
    ) -> str:
        pieces = self._pieces
        entries = []
        data_changed = set()
        for task_id, task in workflow.tasks.items():
            key = task_id.int
            piece = pieces.get(key)
            if piece is None or piece.task is not task or piece.data != task.data:
                data_changed.add(key)
                piece = None
            entries.append((key, task, piece))
        parts = []
        for key, task, known in entries:
            parent = task._parent
            piece = known
            if (
                piece is None
                or (parent is not None and parent.int in data_changed)
                or not piece.holds(task)
            ):
                piece = pieces[key] = _Piece(task, self._task_json(key, task))
            parts.append(piece.json)
            seen.add(key)
        head = _ENCODER.encode(header)
        return f'{{"tasks":{{{",".join(parts)}}}{extra},{head[1:]}'

    def _task_json(self, key: int, task: Any) -> str:
        """``"<id>":<JSON>`` of what SpiffWorkflow 3.2's ``TaskConverter.to_dict`` returns.

        Written out because the converter runs every field through the registry and encodes
        the constant fields again each time (about twice the time); ``OPSFLOW_VERIFY_STATE``
        and tests/engine/test_state_storage.py compare the two.
        """
        parent = task.parent
        head = self._heads.get(key)
        if head is None:
            task_id = str(task.id)
            parent_id = f'"{task._parent}"' if parent is not None else "null"
            name = _ENCODER.encode(task.task_spec.name)
            typename = _SERIALIZER.registry.typenames[type(task)]
            head = self._heads[key] = (
                f'"{task_id}":{{"id":"{task_id}","parent":{parent_id},"task_spec":{name},'
                f'"typename":"{typename}",'
            )
        if parent is None:
            data, delta = _encoded(task.data), "{}"
        else:
            data, delta = "{}", _delta(task.data, parent.data)
        children = ",".join(f'"{child}"' for child in task._children)
        changed_at = task.last_state_change
        internal = _SERIALIZER.registry.convert(task.internal_data)
        return (
            f'{head}"children":[{children}],'
            f'"last_state_change":{_ENCODER.encode(changed_at)},"state":{task._state},'
            f'"triggered":{"true" if task.triggered else "false"},'
            f'"internal_data":{_encoded(internal)},"data":{data},"delta":{delta}}}'
        )


def _delta(mine: dict[str, Any], theirs: dict[str, Any]) -> str:
    """``DeepMerge.get_updated_keys`` / ``get_deleted_keys`` of a task's data against its parent's."""
    updates = {k: v for k, v in mine.items() if k not in theirs or v != theirs[k]}
    deletions = [k for k in theirs if k not in mine]
    if not updates and not deletions:
        return _NO_DELTA
    return str(_ENCODER.encode({"updates": updates, "deletions": deletions}))


def _common_header(workflow: Any) -> dict[str, Any]:
    """``WorkflowConverter.to_dict`` without the tasks (which are assembled from pieces)."""
    registry = _SERIALIZER.registry
    last = workflow.last_task
    return {
        "data": registry.convert(registry.clean(workflow.data)),
        "correlations": workflow.correlations,
        "last_task": str(last.id) if last is not None else None,
        "success": workflow.success,
        "completed": workflow.completed,
        "root": str(workflow.task_tree.id),
    }


def _top_header(workflow: Any) -> dict[str, Any]:
    registry = _SERIALIZER.registry
    return {
        **_common_header(workflow),
        "bpmn_events": registry.convert(workflow.bpmn_events),
        "typename": registry.typenames[type(workflow)],
        _SERIALIZER.VERSION_KEY: _SERIALIZER.VERSION,
    }


def _subprocess_header(workflow: Any) -> dict[str, Any]:
    return {
        **_common_header(workflow),
        "parent_task_id": str(workflow.parent_task_id),
        "spec": workflow.spec.name,
        "typename": _SERIALIZER.registry.typenames[type(workflow)],
    }
