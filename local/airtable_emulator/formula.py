"""A deliberately small subset of Airtable formulas, for ``filterByFormula``.

Silently ignoring a filter would return records the client did not ask for, so the
emulator either evaluates a formula or rejects it with 422 INVALID_FILTER_BY_FORMULA.
Supported: ``{Field}``, string and number literals, ``= != <> < > <= >=``, ``AND``,
``OR``, ``NOT``, ``TRUE()``, ``FALSE()``, ``BLANK()`` and parentheses. That covers what
``pyairtable.formulas.match()`` produces (e.g. ``AND({Id}='x', {Amount}=25)``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import ApiError, unprocessable

#: Evaluates a compiled formula against a record's fields (keyed by field name).
Predicate = Callable[[dict[str, Any]], Any]

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<field>\{[^}]*\})
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<number>\d+(?:\.\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)
_FUNCTIONS = {"AND", "OR", "NOT", "TRUE", "FALSE", "BLANK"}


def invalid_formula(detail: str) -> ApiError:
    """422 with Airtable's message for a formula it cannot use."""
    return unprocessable(
        "INVALID_FILTER_BY_FORMULA",
        "The formula for filtering records is invalid: Invalid formula. Please check your"
        f" formula text. (emulator: {detail})",
    )


def compile_formula(text: str, field_names: set[str]) -> Predicate:
    """Parse ``text`` into a predicate, or raise a 422 :class:`ApiError`."""
    parser = _Parser(_tokenize(text), field_names)
    predicate = parser.expression()
    if parser.peek() is not None:
        raise invalid_formula(f"unexpected {parser.peek()[1]!r}")
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


class _Parser:
    """Recursive descent over the token list; each rule returns a predicate."""

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

    def expression(self) -> Predicate:
        left = self._operand()
        token = self.peek()
        if token is None or token[0] != "op":
            return left
        self._take()
        right = self._operand()
        operator = token[1]
        return lambda fields: _compare(operator, left(fields), right(fields))

    def _operand(self) -> Predicate:
        kind, value = self._take()
        if kind == "field":
            name = value[1:-1]
            if name not in self._field_names:
                raise invalid_formula(f"unknown field names: {name}")
            return lambda fields: fields.get(name)
        if kind == "string":
            literal = re.sub(r"\\(.)", r"\1", value[1:-1])
            return lambda _fields: literal
        if kind == "number":
            number = float(value) if "." in value else int(value)
            return lambda _fields: number
        if kind == "name" and value.upper() in _FUNCTIONS:
            return self._call(value.upper())
        if value == "(":
            inner = self.expression()
            self._take(")")
            return inner
        raise invalid_formula(f"unsupported {value!r}")

    def _call(self, name: str) -> Predicate:
        self._take("(")
        args: list[Predicate] = []
        if self.peek() is not None and self.peek()[1] != ")":
            args.append(self.expression())
            while self.peek() is not None and self.peek()[1] == ",":
                self._take(",")
                args.append(self.expression())
        self._take(")")
        if name in ("TRUE", "FALSE", "BLANK") and args:
            raise invalid_formula(f"{name}() takes no arguments")
        if name == "NOT" and len(args) != 1:
            raise invalid_formula("NOT() takes one argument")
        if name in ("AND", "OR") and not args:
            raise invalid_formula(f"{name}() needs arguments")
        return _FUNCTION_BUILDERS[name](args)


_FUNCTION_BUILDERS: dict[str, Callable[[list[Predicate]], Predicate]] = {
    "AND": lambda args: lambda f: all(truthy(arg(f)) for arg in args),
    "OR": lambda args: lambda f: any(truthy(arg(f)) for arg in args),
    "NOT": lambda args: lambda f: not truthy(args[0](f)),
    "TRUE": lambda _args: lambda _f: True,
    "FALSE": lambda _args: lambda _f: False,
    "BLANK": lambda _args: lambda _f: None,
}


def truthy(value: Any) -> bool:
    """Airtable's truthiness: empty strings, 0 and blanks are false."""
    return bool(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
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
        a, b = str(a), str(b)
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
