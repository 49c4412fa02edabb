"""Run diagram expressions and scripts under an AST whitelist: the project's only eval/exec.

Process owners write gateway conditions, script tasks, DMN input/output entries
and timer expressions in the browser BPMN editor; everything they write runs
here and nowhere else.  Three layers:

1. ``check`` parses the source and walks *every* node against a whitelist of
   node types (no import, def, lambda, class, while, try, with, raise, yield,
   match...), then against rules for names and attributes: nothing starting
   with ``_``, no interpreter internals (``gi_``, ``f_``, ``tb_``, ``co_``,
   ``cr_``, ``ag_``), no ``format``/``format_map``/``mro``, no reading the system
   clock (``now()``/``today()`` read the engine clock, see ``script_helpers``),
   no calls to ``eval``/``open``/``getattr``/``type``... .
2. After the check a transformer routes whatever can build big objects
   through size-checking helpers: the operators ``+ * ** << %`` (augmented
   too), f-strings, every method call (``join``, ``replace``, ``ljust``... are
   checked before the call, every result after it, so ``encode``/``upper``
   chains cannot grow exponentially) and methods read as values.  Every ``for``
   loop and comprehension draws on a per-run budget of loop steps, wall time and
   memory growth.  The helpers' names start with ``_``: a script cannot write
   them, only the transformer can, after the check.
3. The code runs with one globals dict (a copy of the context) and
   ``__builtins__`` replaced by ``SAFE_HELPERS``, so context variables win over
   helpers and helpers never leak back into the context.

What an in-process sandbox cannot promise: one builtin call over big but legal
data runs to its end (``max`` over a million references to a million-item list,
``==`` or ``hash`` on containers that share sub-containers exponentially), as
the deadline is only checked between loop steps; memory is likewise sampled
between loop steps.  Hard CPU/memory guarantees need a worker process with
rlimits and a kill timer.

The layers live in ``checks`` (1), ``guards`` (2: the transformer, the guards it
calls and the run budget) and ``runner`` (3: compile cache, evaluate/execute, error
translation); ``helpers`` holds ``SAFE_HELPERS``.  Callers use the names below.
"""

from engine.sandbox.helpers import SAFE_HELPERS
from engine.sandbox.runner import CompiledScript, check, compile_cached, evaluate, execute

__all__ = [
    "SAFE_HELPERS",
    "CompiledScript",
    "check",
    "compile_cached",
    "evaluate",
    "execute",
]
