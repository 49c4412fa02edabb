"""Layer 1: the static check every expression and script passes before it is compiled.

A whitelist of AST node types, then rules for names, attributes, calls, keywords,
unpacking and slices; it runs nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any, Final

from engine.errors import ScriptRejectedError
from engine.sandbox.guards import GUARDED_METHODS

_ALLOWED_NODES: Final[frozenset[type[ast.AST]]] = frozenset(
    {
        # statements (exec mode)
        ast.Module, ast.Expression, ast.Expr, ast.Assign, ast.AugAssign, ast.For, ast.If,
        ast.Pass, ast.Break, ast.Continue, ast.Delete,
        # expressions
        ast.BoolOp, ast.NamedExpr, ast.BinOp, ast.UnaryOp, ast.IfExp, ast.Dict, ast.Set,
        ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.comprehension,
        ast.Compare, ast.Call, ast.keyword, ast.FormattedValue, ast.JoinedStr, ast.Constant,
        ast.Attribute, ast.Subscript, ast.Slice, ast.Starred, ast.Name, ast.List, ast.Tuple,
        ast.Load, ast.Store, ast.Del,
        # operators (ast.MatMult is refused with a message by the BinOp rule)
        ast.And, ast.Or, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
        ast.LShift, ast.RShift, ast.BitOr, ast.BitXor, ast.BitAnd, ast.MatMult,
        ast.Invert, ast.Not, ast.UAdd, ast.USub,
        ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
    }
)  # fmt: skip

_IMPORTS = ("脚本不允许导入模块", "imports are not allowed")
_FUNCTIONS = ("脚本不允许定义函数", "defining functions is not allowed")
_EXCEPTIONS = ("脚本不允许捕获或抛出异常", "try/except, raise and assert are not allowed")
_SCOPES = ("脚本不允许使用 global/nonlocal", "global and nonlocal are not allowed")
_GENERATORS = ("脚本不允许使用 yield/await", "yield and await are not allowed")
_REFUSED_SYNTAX: Final[dict[type[ast.AST], tuple[str, str]]] = {
    ast.Import: _IMPORTS,
    ast.ImportFrom: _IMPORTS,
    ast.FunctionDef: _FUNCTIONS,
    ast.AsyncFunctionDef: _FUNCTIONS,
    ast.Lambda: ("脚本不允许使用 lambda", "lambda is not allowed"),
    ast.ClassDef: ("脚本不允许定义类", "defining classes is not allowed"),
    ast.While: (
        "脚本不允许使用 while 循环（可能永不结束），请用 for ... in range(...)",
        "while loops are not allowed (they may never end); use for ... in range(...)",
    ),
    ast.With: ("脚本不允许使用 with", "with statements are not allowed"),
    ast.AsyncWith: ("脚本不允许使用 with", "with statements are not allowed"),
    ast.AsyncFor: ("脚本不允许使用 async for", "async for is not allowed"),
    ast.Try: _EXCEPTIONS,
    ast.TryStar: _EXCEPTIONS,
    ast.Raise: _EXCEPTIONS,
    ast.Assert: _EXCEPTIONS,
    ast.Global: _SCOPES,
    ast.Nonlocal: _SCOPES,
    ast.Yield: _GENERATORS,
    ast.YieldFrom: _GENERATORS,
    ast.Await: _GENERATORS,
    ast.Return: ("脚本不允许使用 return", "return is not allowed"),
    ast.Match: ("脚本不允许使用 match 语句", "match statements are not allowed"),
    ast.AnnAssign: ("脚本不允许使用类型注解", "annotations are not allowed"),
}

FORBIDDEN_CALLS: Final = frozenset(
    {
        "eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "hasattr",
        "globals", "locals", "vars", "dir", "type", "super", "breakpoint", "input", "help",
        "memoryview", "object", "exit", "quit",
    }
)  # fmt: skip

_INTERNAL_PREFIXES: Final = ("gi_", "f_", "tb_", "co_", "cr_", "ag_")
_CLOCK = (
    "脚本不允许读取系统时间，请调用 now() 或 today()（读取引擎时钟）",
    "reading the system clock is not allowed; call now() or today(), which read the engine clock",
)
_FORBIDDEN_ATTRIBUTES: Final[dict[str, tuple[str, str]]] = {
    "format": ("不允许使用 format，请改用 f-string", "'format' is not allowed; use an f-string"),
    "format_map": ("不允许使用 format_map，请改用 f-string", "'format_map' is not allowed"),
    "mro": ("不允许访问 'mro'", "'mro' is not allowed"),
    "now": _CLOCK,
    "today": _CLOCK,
    "utcnow": _CLOCK,
}


def _attribute_problem(attr: str) -> tuple[str, str] | None:
    if attr.startswith("_"):
        return (
            f"不允许访问以下划线开头的属性 '{attr}'",
            f"attributes starting with '_' are not allowed: '{attr}'",
        )
    if attr.startswith(_INTERNAL_PREFIXES):
        return (
            f"不允许访问解释器内部属性 '{attr}'",
            f"interpreter internals are not accessible: '{attr}'",
        )
    return _FORBIDDEN_ATTRIBUTES.get(attr)


class _Checker:
    """Walks every node of a parsed script (breadth first, so parents come first)."""

    def __init__(self, source: str) -> None:
        self._lines = source.splitlines()
        self._called: set[int] = set()  # ids of nodes used as the function of a call
        self._call_args: set[int] = set()  # ids of nodes passed as positional arguments
        self._rules: dict[type[ast.AST], Callable[[Any], None]] = {
            ast.Name: self._name,
            ast.Attribute: self._attribute,
            ast.Call: self._call,
            ast.keyword: self._keyword,
            ast.Starred: self._starred,
            ast.Subscript: self._subscript,
            ast.BinOp: self._operator,
            ast.AugAssign: self._operator,
            ast.comprehension: self._comprehension,
        }

    def run(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            kind = type(node)
            if kind not in _ALLOWED_NODES:
                zh, en = _REFUSED_SYNTAX.get(
                    kind, (f"脚本不允许使用语法 {kind.__name__}", f"{kind.__name__} is not allowed")
                )
                raise self._reject(node, zh, en)
            rule = self._rules.get(kind)
            if rule is not None:
                rule(node)

    def _where(self, line: int | None, byte_col: int | None, back: int = 0) -> str:
        """`` (line L, col C)`` with a 1-based character column; ast gives UTF-8 byte offsets."""
        if line is None:
            return ""
        if byte_col is None or not 0 < line <= len(self._lines):
            return f" (line {line})"
        chars = len(self._lines[line - 1].encode()[:byte_col].decode(errors="ignore"))
        return f" (line {line}, col {max(chars - back, 0) + 1})"

    def _reject(
        self, node: ast.AST, zh: str, en: str, where: str | None = None
    ) -> ScriptRejectedError:
        if where is None:
            where = self._where(getattr(node, "lineno", None), getattr(node, "col_offset", None))
        return ScriptRejectedError(f"{zh} / {en}{where}")

    def _name(self, node: ast.Name) -> None:
        if node.id.startswith("_"):
            raise self._reject(
                node,
                f"不允许使用以下划线开头的名称 '{node.id}'",
                f"names starting with '_' are not allowed: '{node.id}'",
            )

    def _attribute(self, node: ast.Attribute) -> None:
        where = self._attribute_where(node)
        problem = _attribute_problem(node.attr)
        if problem is not None:
            raise self._reject(node, *problem, where=where)
        if not isinstance(node.ctx, ast.Load):
            raise self._reject(
                node,
                "不允许给属性赋值或删除属性",
                "assigning to or deleting attributes is not allowed",
                where,
            )
        if node.attr in GUARDED_METHODS and id(node) not in self._called:
            raise self._reject(
                node,
                f"方法 '{node.attr}' 只能直接调用",
                f"the method '{node.attr}' may only be called directly",
                where,
            )

    def _attribute_where(self, node: ast.Attribute) -> str:
        """Position of the attribute's name, which ends the node, not of the whole expression."""
        if node.end_lineno is None or node.end_col_offset is None:
            return self._where(node.lineno, node.col_offset)
        return self._where(node.end_lineno, node.end_col_offset, back=len(node.attr))

    def _call(self, node: ast.Call) -> None:
        self._called.add(id(node.func))
        self._call_args.update(id(arg) for arg in node.args)
        if isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            raise self._reject(
                node.func,
                f"不允许调用 '{node.func.id}'",
                f"calling '{node.func.id}' is not allowed",
            )

    def _keyword(self, node: ast.keyword) -> None:
        if node.arg is None:
            raise self._reject(
                node,
                "不允许用 ** 展开关键字参数",
                "passing keyword arguments with ** is not allowed",
            )
        if node.arg.startswith("_"):
            raise self._reject(
                node,
                f"不允许使用以下划线开头的参数名 '{node.arg}'",
                f"keyword arguments starting with '_' are not allowed: '{node.arg}'",
            )

    def _starred(self, node: ast.Starred) -> None:
        if isinstance(node.ctx, ast.Load) and id(node) not in self._call_args:
            raise self._reject(
                node,
                "不允许在列表、元组或集合里用 * 展开，请用 a + b",
                "* unpacking inside a list, tuple or set is not allowed; use a + b",
            )

    def _subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, ast.Store) and isinstance(node.slice, ast.Slice):
            raise self._reject(
                node, "不允许给切片赋值", "assigning to a slice (a[i:j] = ...) is not allowed"
            )

    def _operator(self, node: ast.BinOp | ast.AugAssign) -> None:
        if isinstance(node.op, ast.MatMult):
            raise self._reject(node, "不允许使用 @ 运算符", "the @ operator is not allowed")

    def _comprehension(self, node: ast.comprehension) -> None:
        if node.is_async:
            raise self._reject(node.target, *_GENERATORS)
