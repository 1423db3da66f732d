"""``search.constraint``: a restricted Python expression over parameter values.

Like Kernel Tuner's restrictions: arithmetic, comparisons, boolean logic and a few functions,
evaluated without builtins. The arithmetic is bounded as well: ``**`` and ``*`` refuse results
beyond ``MAX_INT_BITS`` bits or ``MAX_SEQUENCE`` items, so ``a ** 9999999999`` or
``"x" * 10 ** 9`` make the point invalid at once instead of hanging the master or filling its
memory. An expression that cannot be evaluated for a point (division by zero, a type error, a
bound exceeded) makes that point invalid.
"""
from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from typing import Any

MAX_LENGTH = 1000          # characters of the expression
MAX_INT_BITS = 4096        # integers any larger are not parameter arithmetic
MAX_SEQUENCE = 1000        # items of a repeated string, tuple or list

_ALLOWED_NODES = (ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Name,
                  ast.Load, ast.Constant, ast.And, ast.Or, ast.Not, ast.Add, ast.Sub, ast.Mult,
                  ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub, ast.UAdd, ast.Eq, ast.NotEq,
                  ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Call, ast.IfExp, ast.In, ast.NotIn,
                  ast.Tuple, ast.List)
FUNCTIONS: dict[str, Callable[..., Any]] = {"abs": abs, "min": min, "max": max,
                                            "log2": math.log2, "sqrt": math.sqrt}


class ConstraintError(ValueError):
    """The expression is not an allowed constraint; the message says why."""


def _bounded_pow(base: Any, exponent: Any) -> Any:
    if (isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1
            and base.bit_length() * exponent > MAX_INT_BITS):
        raise OverflowError("power too large")
    return base ** exponent


def _bounded_mul(left: Any, right: Any) -> Any:
    for seq, count in ((left, right), (right, left)):
        if (isinstance(seq, (str, tuple, list)) and isinstance(count, int)
                and len(seq) * count > MAX_SEQUENCE):
            raise OverflowError("repetition too long")
    if (isinstance(left, int) and isinstance(right, int)
            and left.bit_length() + right.bit_length() > MAX_INT_BITS):
        raise OverflowError("product too large")
    return left * right


_BOUNDED = {ast.Pow: "_bounded_pow", ast.Mult: "_bounded_mul"}


class _Bound(ast.NodeTransformer):
    """Rewrite ``a ** b`` and ``a * b`` as calls of the bounded versions above."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        name = _BOUNDED.get(type(node.op))
        if name is None:
            return node
        return ast.copy_location(ast.Call(func=ast.Name(id=name, ctx=ast.Load()),
                                          args=[node.left, node.right], keywords=[]), node)


def compile_constraint(expression: str, names: tuple[str, ...]
                       ) -> Callable[[Mapping[str, Any]], bool]:
    """The constraint as a predicate over a point's parameter values, or ConstraintError."""
    if len(expression) > MAX_LENGTH:
        raise ConstraintError(f"longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ConstraintError(f"not a valid expression ({exc.msg})") from None
    except (RecursionError, MemoryError):
        raise ConstraintError("nested too deeply") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ConstraintError(f"{type(node).__name__} is not allowed")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name)
                                               and node.func.id in FUNCTIONS):
            raise ConstraintError(f"only {', '.join(FUNCTIONS)} may be called")
        if isinstance(node, ast.Name) and node.id not in names and node.id not in FUNCTIONS:
            raise ConstraintError(f"unknown name {node.id!r} (parameters: {', '.join(names)})")
    code = compile(ast.fix_missing_locations(_Bound().visit(tree)), "<constraint>", "eval")
    scope = {**FUNCTIONS, "_bounded_pow": _bounded_pow, "_bounded_mul": _bounded_mul}

    def check(params: Mapping[str, Any]) -> bool:
        try:
            return bool(eval(code, {"__builtins__": {}}, {**scope, **params}))
        except (ArithmeticError, TypeError, ValueError):
            return False
    return check
