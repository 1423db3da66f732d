"""The constraint sandbox (orchestrator.constraint.compile_constraint): what an expression may
contain, what is refused with a one-line error naming the field, and how evaluation errors end."""
from __future__ import annotations

import pytest

from orchestrator.constraint import ConstraintError, compile_constraint

NAMES = ("block_x", "block_y", "unroll")
POINT = {"block_x": 32, "block_y": 8, "unroll": 2}


@pytest.mark.parametrize("expression, expected", [
    ("block_x * block_y <= 1024", True),
    ("block_x * block_y > 256", False),
    ("block_x % 32 == 0 and unroll in (1, 2, 4)", True),
    ("not (unroll == 2)", False),
    ("-block_y < 0 or +unroll > 5", True),
    ("block_x // block_y - 2 ** unroll == 0", True),
    ("unroll not in [3, 5]", True),
    ("max(block_x, block_y) == 32 and min(block_x, block_y) == abs(-8)", True),
    ("log2(block_x) == 5 and sqrt(unroll * 8) == 4", True),
    ("block_x if unroll > 1 else block_y", True),        # truthiness of a number
    ("block_x / 4 == block_y", True),
    ("1 < block_y < block_x", True),
])
def test_accepted_expressions(expression: str, expected: bool) -> None:
    assert compile_constraint(expression, NAMES)(POINT) is expected


@pytest.mark.parametrize("expression, message", [
    ("block_x.real > 3", "Attribute is not allowed"),
    ("block_x.bit_length() > 3", "only abs, min, max, log2, sqrt may be called"),
    ("(1, 2)[0] == 1", "Subscript is not allowed"),
    ("(lambda: 1) == 1", "Lambda is not allowed"),
    ("[x for x in (1, 2)] == [1, 2]", "ListComp is not allowed"),
    ("{block_x: 1} == {}", "Dict is not allowed"),
    ("(y := 3) > 1", "NamedExpr is not allowed"),
    ("__import__('os')", "only abs, min, max, log2, sqrt may be called"),
    ("__class__ == 1", "unknown name '__class__'"),
    ("open('x')", "only abs, min, max, log2, sqrt may be called"),
    ("warp_size > 32", "unknown name 'warp_size' (parameters: block_x, block_y, unroll)"),
    ("block_x >", "not a valid expression"),
    ("f'{block_x}' == '32'", "is not allowed"),
])
def test_rejected_expressions_name_the_field(expression: str, message: str) -> None:
    with pytest.raises(ConstraintError) as error:
        compile_constraint(expression, NAMES)
    text = str(error.value)
    assert message in text and "\n" not in text


@pytest.mark.parametrize("expression", [
    "block_x / (unroll - 2) > 1",           # ZeroDivisionError
    "sqrt(unroll - 10) > 0",               # ValueError: math domain error
    "block_x + 'a' == 1",                  # TypeError
    "log2(0) < 1",                         # ValueError
    "2.0 ** 100000 > 1",                   # OverflowError
])
def test_errors_while_evaluating_mean_invalid(expression: str) -> None:
    assert compile_constraint(expression, NAMES)(POINT) is False


def test_no_builtins_are_reachable() -> None:
    check = compile_constraint("abs(block_x) == 32", NAMES)
    assert check(POINT) is True
    # Only the five functions may be called, and no other name than them and the parameters
    # exists: no builtin is reachable.
    with pytest.raises(ConstraintError, match="only abs, min, max, log2, sqrt may be called"):
        compile_constraint("len(block_x) > 0", NAMES)
    with pytest.raises(ConstraintError, match="unknown name 'print'"):
        compile_constraint("print == 1", NAMES)
