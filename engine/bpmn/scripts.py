"""The script engine SpiffWorkflow runs diagram code with: every expression and script goes to the sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from engine import sandbox
from engine.errors import ScriptRejectedError


class _SandboxEnvironment(BasePythonScriptEngineEnvironment):  # type: ignore[misc]
    def evaluate(
        self,
        expression: str,
        context: dict[str, Any],
        external_context: dict[str, Any] | None = None,
    ) -> Any:
        if not isinstance(expression, str):
            raise ScriptRejectedError(
                f"表达式必须是文本 / the expression must be text, not {expression!r}"
            )
        scope = {**context, **external_context} if external_context else context
        return sandbox.evaluate(expression, scope)

    def execute(
        self, script: str, context: dict[str, Any], external_context: dict[str, Any] | None = None
    ) -> bool:
        sandbox.execute(script, context)
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        raise ScriptRejectedError("不支持服务任务 / service tasks are not supported by opsflow")


ServiceHandler = Callable[[Any, str, Mapping[str, Any]], Any]
"""(spiff task, operator name, parameter values) -> a JSON-compatible result."""

_service_handler: list[ServiceHandler] = []


def set_service_handler(handler: ServiceHandler) -> None:
    """Install what runs service-task operators (``engine.case_files`` does, on import)."""
    _service_handler[:] = [handler]


class _ScriptEngine(PythonScriptEngine):  # type: ignore[misc]
    def call_service(
        self, task: Any, operation_name: str = "", operation_params: Any = None, **kwargs: Any
    ) -> str:
        # PythonScriptEngine.call_service's own error path refers to an undefined name, and the
        # environment only sees the data: operators get the task and go through the handler.
        if not _service_handler:
            raise ScriptRejectedError("不支持服务任务 / no service-task operators are installed")
        params = {name: spec["value"] for name, spec in (operation_params or {}).items()}
        result = _service_handler[0](task, operation_name, params)
        return json.dumps(result, ensure_ascii=False)


SCRIPT_ENGINE = _ScriptEngine(environment=_SandboxEnvironment())
