"""The only SpiffWorkflow/lxml user: hardened parsing, spec cache, state (de)serialization, engine steps.

Everything SpiffWorkflow raises is translated into engine errors that name the BPMN element
(``errors``). Callers use the names below, as ``from engine import bpmn; bpmn.compile_process``;
the modules are ``xml`` (hardened parsing, what is read off the raw XML), ``scripts`` (the
sandboxed script engine), ``specs`` (parsing, the spec cache, what is read off the specs),
``run`` (running workflows, the mirror pass) and ``state`` (state without the spec, StateWriter).
"""

from engine.bpmn.run import (
    ReadyTask,
    case_title,
    catch_message,
    complete_user_task,
    completed_bpmn_ids,
    fire_due_timers,
    hold_timers,
    is_completed,
    mirror,
    new_workflow,
    ready_user_tasks,
    retry_failed,
    run_steps,
    shift_timers,
    step_events,
    task_data,
    waiting_messages,
    waiting_timers,
    workflow_data,
)
from engine.bpmn.scripts import set_service_handler
from engine.bpmn.specs import (
    CompiledProcess,
    Expression,
    ServiceTaskSpec,
    bundle_digest,
    compile_process,
    decision_tables,
    dmn_tables,
    expressions,
    service_tasks,
    start_lanes,
)
from engine.bpmn.state import StateWriter, dump_state, load_state
from engine.bpmn.xml import (
    MAX_XML_BYTES,
    called_element_ids,
    executable_process_id,
    foreign_constructs,
    message_names,
    parse_xml,
)

__all__ = [
    "MAX_XML_BYTES",
    "CompiledProcess",
    "Expression",
    "ReadyTask",
    "ServiceTaskSpec",
    "StateWriter",
    "bundle_digest",
    "called_element_ids",
    "case_title",
    "catch_message",
    "compile_process",
    "complete_user_task",
    "completed_bpmn_ids",
    "decision_tables",
    "dmn_tables",
    "dump_state",
    "executable_process_id",
    "expressions",
    "fire_due_timers",
    "foreign_constructs",
    "hold_timers",
    "is_completed",
    "load_state",
    "message_names",
    "mirror",
    "new_workflow",
    "parse_xml",
    "ready_user_tasks",
    "retry_failed",
    "run_steps",
    "service_tasks",
    "set_service_handler",
    "shift_timers",
    "start_lanes",
    "step_events",
    "task_data",
    "waiting_messages",
    "waiting_timers",
    "workflow_data",
]
