"""The script engine SpiffWorkflow runs diagram code with: every expression and script goes to the sandbox."""

from __future__ import annotations

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


class _ScriptEngine(PythonScriptEngine):  # type: ignore[misc]
    def call_service(self, task: Any, **kwargs: Any) -> Any:
        # PythonScriptEngine.call_service's own error path refers to an undefined name.
        return self.environment.call_service(task.data, **kwargs)


SCRIPT_ENGINE = _ScriptEngine(environment=_SandboxEnvironment())
