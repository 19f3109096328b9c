"""A subset of Airtable formulas, for ``filterByFormula``.

Silently ignoring a filter would return records the client did not ask for, so the
emulator either evaluates a formula or rejects it with 422 INVALID_FILTER_BY_FORMULA.

Supported:

* ``{Field Name}`` references by name; ``\\}`` inside braces stands for ``}`` (what
  ``pyairtable.formulas.Field`` writes for a name with a closing brace);
* string literals in single or double quotes, a backslash escaping the next character;
  numbers (``25``, ``2.5``, ``1e+20``, ``1.5e-07``), with a unary minus;
* ``= != <> < > <= >=``, ``AND(...)`` and ``OR(...)`` with any number of arguments,
  ``NOT(x)``, ``TRUE()``, ``FALSE()``, ``BLANK()``, ``RECORD_ID()`` and parentheses.

That covers what ``pyairtable.formulas`` writes for ``match()``, ``EQ``/``NE``/``GT``...,
``AND``/``OR``/``NOT`` over fields, strings, numbers and booleans. A cell that holds a list
(multiple selects, links, attachments) is compared as its items joined with ", ", as
Airtable's formulas see it (a link as the linked records' primary values).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import ApiError, unprocessable

#: Evaluates a compiled formula against a record's cells (keyed by field name) and id.
Predicate = Callable[..., Any]

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<field>\{(?:\\\}|[^}])*\})
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),-])
    )""",
    re.VERBOSE | re.DOTALL,
)
_FUNCTIONS = {"AND", "OR", "NOT", "TRUE", "FALSE", "BLANK", "RECORD_ID"}
_NO_ARGUMENTS = {"TRUE", "FALSE", "BLANK", "RECORD_ID"}


def invalid_formula(detail: str) -> ApiError:
    """422 with Airtable's message for a formula it cannot use."""
    return unprocessable(
        "INVALID_FILTER_BY_FORMULA",
        "The formula for filtering records is invalid: Invalid formula. Please check your"
        f" formula text. (emulator: {detail})",
    )


def compile_formula(text: str, field_names: set[str]) -> Predicate:
    """Parse ``text`` into ``predicate(cells, record_id="")``, or raise a 422 ApiError."""
    parser = _Parser(_tokenize(text), field_names)
    evaluate = parser.expression()
    if parser.peek() is not None:
        raise invalid_formula(f"unexpected {parser.peek()[1]!r}")

    def predicate(cells: dict[str, Any], record_id: str = "") -> Any:
        return evaluate(cells, record_id)

    return predicate


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None or match.end() == position:
            raise invalid_formula(f"cannot read {text[position : position + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


#: A compiled sub-expression: (cells by field name, record id) -> value.
_Node = Callable[[dict[str, Any], str], Any]


class _Parser:
    """Recursive descent over the token list; each rule returns a node."""

    def __init__(self, tokens: list[tuple[str, str]], field_names: set[str]) -> None:
        self._tokens = tokens
        self._index = 0
        self._field_names = field_names

    def peek(self) -> tuple[str, str] | None:
        return self._tokens[self._index] if self._index < len(self._tokens) else None

    def _take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise invalid_formula(f"expected {value or 'more'}")
        self._index += 1
        return token

    def expression(self) -> _Node:
        left = self._operand()
        token = self.peek()
        if token is None or token[0] != "op":
            return left
        self._take()
        right = self._operand()
        operator = token[1]
        node: _Node = lambda cells, rid: _compare(operator, left(cells, rid), right(cells, rid))  # noqa: E731
        if operator == "=" and getattr(left, "field", None) and hasattr(right, "text"):
            node.equalities = ((left.field, right.text),)  # type: ignore[attr-defined]
        return node

    def _operand(self) -> _Node:
        kind, value = self._take()
        if kind == "field":
            name = value[1:-1].replace("\\}", "}")
            if name not in self._field_names:
                raise invalid_formula(f"unknown field names: {name}")
            cell: _Node = lambda cells, _rid: cells.get(name)  # noqa: E731
            cell.field = name  # type: ignore[attr-defined]
            return cell
        if kind == "string":
            literal = re.sub(r"\\(.)", r"\1", value[1:-1], flags=re.DOTALL)
            text: _Node = lambda _cells, _rid: literal  # noqa: E731
            text.text = literal  # type: ignore[attr-defined]
            return text
        if kind == "number":
            number = _number(value)
            return lambda _cells, _rid: number
        if value == "-":
            inner = self._operand()
            return lambda cells, rid: _negate(inner(cells, rid))
        if kind == "name" and value.upper() in _FUNCTIONS:
            return self._call(value.upper())
        if value == "(":
            inner = self.expression()
            self._take(")")
            return inner
        raise invalid_formula(f"unsupported {value!r}")

    def _call(self, name: str) -> _Node:
        self._take("(")
        args: list[_Node] = []
        if self.peek() is not None and self.peek()[1] != ")":
            args.append(self.expression())
            while self.peek() is not None and self.peek()[1] == ",":
                self._take(",")
                args.append(self.expression())
        self._take(")")
        if name in _NO_ARGUMENTS and args:
            raise invalid_formula(f"{name}() takes no arguments")
        if name == "NOT" and len(args) != 1:
            raise invalid_formula("NOT() takes one argument")
        if name in ("AND", "OR") and not args:
            raise invalid_formula(f"{name}() needs arguments")
        node = _FUNCTION_BUILDERS[name](args)
        terms = [getattr(arg, "equalities", None) for arg in args]
        if name == "AND" and all(terms):
            node.equalities = tuple(t for term in terms for t in term)  # type: ignore[attr-defined,union-attr]
        if name == "OR" and all(terms) and len({tuple(f for f, _ in t) for t in terms}) == 1:  # type: ignore[union-attr]
            return _any_of(terms)  # type: ignore[arg-type]
        return node


def _any_of(terms: list[tuple[tuple[str, str], ...]]) -> _Node:
    """`OR` of `AND`s of `{field} = 'text'` over the same fields (a lookup by key), as one
    set membership: the same answer as comparing each term, without the time it takes."""
    names = [f for f, _ in terms[0]]
    wanted = {tuple(text for _, text in term) for term in terms}

    def node(cells: dict[str, Any], _rid: str) -> bool:
        return tuple(_as_text(cells.get(n)) for n in names) in wanted

    return node


def _as_text(cell: Any) -> str:
    """What `_compare` compares a text literal with: blank is "", a number its text."""
    value = _scalar(cell)
    if value is None:
        return ""
    return value if isinstance(value, str) else _text(value)


def _number(text: str) -> int | float:
    if re.fullmatch(r"\d+", text):
        return int(text)
    return float(text)


def _negate(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_formula("a minus sign must precede a number")
    return -value


_FUNCTION_BUILDERS: dict[str, Callable[[list[_Node]], _Node]] = {
    "AND": lambda args: lambda c, r: all(truthy(arg(c, r)) for arg in args),
    "OR": lambda args: lambda c, r: any(truthy(arg(c, r)) for arg in args),
    "NOT": lambda args: lambda c, r: not truthy(args[0](c, r)),
    "TRUE": lambda _args: lambda _c, _r: True,
    "FALSE": lambda _args: lambda _c, _r: False,
    "BLANK": lambda _args: lambda _c, _r: None,
    "RECORD_ID": lambda _args: lambda _c, r: r,
}


def truthy(value: Any) -> bool:
    """Airtable's truthiness: empty strings, 0 and blanks are false."""
    return bool(value)


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, list):
        return ", ".join(_text(item) for item in value) if value else None
    if isinstance(value, bool):
        return int(value)
    return value


def _compare(operator: str, left: Any, right: Any) -> bool:
    a, b = _scalar(left), _scalar(right)
    if a is None or b is None:
        other = b if a is None else a
        blank = "" if isinstance(other, str) else 0
        a = blank if a is None else a
        b = blank if b is None else b
    if isinstance(a, str) != isinstance(b, str):
        a, b = _text(a), _text(b)
    if operator == "=":
        return bool(a == b)
    if operator in ("!=", "<>"):
        return bool(a != b)
    comparisons = {
        "<": lambda: a < b,
        ">": lambda: a > b,
        "<=": lambda: a <= b,
        ">=": lambda: a >= b,
    }
    return bool(comparisons[operator]())
