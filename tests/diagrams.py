"""Small BPMN documents for engine tests, written the way a process owner's editor would save them."""

from __future__ import annotations

import itertools

from engine import forms
from engine.definitions import registry

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="defs" targetNamespace="https://opsflow.test">\n'
)


def props(**values: str) -> str:
    items = "".join(f'<spiffworkflow:property name="{k}" value="{v}"/>' for k, v in values.items())
    return f"<bpmn:extensionElements><spiffworkflow:properties>{items}</spiffworkflow:properties></bpmn:extensionElements>"


def flow(source: str, target: str, condition: str | None = None, flow_id: str | None = None) -> str:
    fid = flow_id or f"f_{source}_{target}"
    body = (
        f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression>'
        if condition
        else ""
    )
    return f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}">{body}</bpmn:sequenceFlow>'


def process(
    key: str, body: str, lanes: dict[str, list[str]] | None = None, before: str = ""
) -> str:
    """A document with one executable process; ``lanes`` maps a lane name to the node ids in it."""
    lane_xml = ""
    if lanes:
        items = "".join(
            f'<bpmn:lane id="lane_{i}" name="{name}">'
            + "".join(f"<bpmn:flowNodeRef>{n}</bpmn:flowNodeRef>" for n in nodes)
            + "</bpmn:lane>"
            for i, (name, nodes) in enumerate(lanes.items())
        )
        lane_xml = f'<bpmn:laneSet id="lanes">{items}</bpmn:laneSet>'
    return f'{HEADER}{before}<bpmn:process id="{key}" name="{key}" isExecutable="true">{lane_xml}{body}</bpmn:process></bpmn:definitions>\n'


def files(
    source: str, xml: str, form_documents: dict[str, str] | None = None
) -> registry.ProcessFiles:
    loaded = {
        key: forms.load_form(text, f"{key}.json") for key, text in (form_documents or {}).items()
    }
    return registry.ProcessFiles(source, xml, {}, loaded)


def user_task(task_id: str, name: str, **properties: str) -> str:
    return f'<bpmn:userTask id="{task_id}" name="{name}">{props(**properties) if properties else ""}</bpmn:userTask>'


def sequence(*node_ids: str) -> str:
    return "".join(flow(a, b) for a, b in itertools.pairwise(node_ids))


def service_task(task_id: str, name: str, operator: str, result: str, **params: str) -> str:
    """A service task calling an opsflow operator; ``params`` are expressions over the task data."""
    items = "".join(
        f'<spiffworkflow:parameter id="{k}" type="any" value="{v}"/>' for k, v in params.items()
    )
    return (
        f'<bpmn:serviceTask id="{task_id}" name="{name}"><bpmn:extensionElements>'
        f'<spiffworkflow:serviceTaskOperator id="{operator}" resultVariable="{result}">'
        f"<spiffworkflow:parameters>{items}</spiffworkflow:parameters>"
        "</spiffworkflow:serviceTaskOperator></bpmn:extensionElements></bpmn:serviceTask>"
    )
