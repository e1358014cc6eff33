"""Constraints between searched parameters: a small expression grammar, never ``eval``.

Grammar (precedence low to high)::

    expr       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)*   # chains like a < b < c
    sum        := term (("+" | "-") term)*
    term       := unary (("*" | "/" | "%") unary)*
    unary      := "-" unary | atom
    atom       := NUMBER | STRING | NAME | "(" expr ")"

A NAME is a parameter name with dots and digit segments (``sma_fast.period``,
``fuzzy_sets.rsi.sets.low.points.1``); STRING is single- or double-quoted (for categorical
values). Every name is resolved when the constraint is parsed, so a constraint naming an
unknown parameter fails before any combination is evaluated.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_]\w*(?:\.\w+)*)"
    r"|(?P<str>'[^']*'|\"[^\"]*\")"
    r"|(?P<op><=|>=|==|!=|<|>|\+|-|\*|/|%|\(|\)))"
)
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,
}
FORM = (
    "write constraints like 'sma_fast.period < sma_slow.period' or "
    "'macd.fast_period * 2 <= macd.slow_period and rsi.period != 7'"
)

# Expression tree: ("num", value) | ("name", parameter) | ("cmp", [ops], [operands])
# | ("arith", op, left, right) | ("neg", x) | ("not", x) | ("and"|"or", [operands])
Node = tuple[Any, ...]


class ConstraintError(ValueError):
    """A constraint does not parse or names an unknown parameter (message says which)."""


@dataclass(frozen=True)
class Constraint:
    """A parsed constraint; ``names`` are the parameters it reads (resolved names)."""

    text: str
    tree: Node
    names: frozenset[str]

    def holds(self, values: Mapping[str, Any]) -> bool:
        """True when the constraint is satisfied by ``values`` (resolved name -> value);
        a comparison between incomparable values (e.g. text and a number) is False."""
        try:
            return bool(_evaluate(self.tree, values))
        except (TypeError, ZeroDivisionError):
            return False


def parse_constraint(text: str, resolve: Callable[[str], str]) -> Constraint:
    """Parse ``text``; ``resolve(name)`` maps a written name to the parameter's canonical
    name or raises ConstraintError (with a did-you-mean) for an unknown one."""
    tokens = _tokenize(text)
    parser = _Parser(tokens, text, resolve)
    tree = parser.expr()
    if parser.pos != len(tokens):
        raise ConstraintError(f"constraint {text!r}: unexpected {tokens[parser.pos][1]!r}; {FORM}")
    return Constraint(text=text, tree=tree, names=frozenset(parser.names))


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ConstraintError(
                f"constraint {text!r}: cannot read {text[pos:].strip()[:20]!r}; {FORM}"
            )
        kind = m.lastgroup or "op"
        value = m.group(kind)
        if kind == "name" and value in ("and", "or", "not"):
            kind = "op"
        tokens.append((kind, value))
        pos = m.end()
    if not tokens:
        raise ConstraintError(f"empty constraint; {FORM}")
    return tokens


class _Parser:
    def __init__(
        self, tokens: list[tuple[str, str]], text: str, resolve: Callable[[str], str]
    ) -> None:
        self.tokens, self.text, self.resolve = tokens, text, resolve
        self.pos = 0
        self.names: set[str] = set()

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise ConstraintError(f"constraint {self.text!r} ends too early; {FORM}")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def expr(self) -> Node:
        return self._joined("or", self._and)

    def _and(self) -> Node:
        return self._joined("and", self._not)

    def _joined(self, word: str, inner: Callable[[], Node]) -> Node:
        parts = [inner()]
        while self._peek() == word:
            self._take()
            parts.append(inner())
        return parts[0] if len(parts) == 1 else (word, parts)

    def _not(self) -> Node:
        if self._peek() == "not":
            self._take()
            return ("not", self._not())
        return self._comparison()

    def _comparison(self) -> Node:
        operands, ops = [self._sum()], []
        while self._peek() in _COMPARE:
            ops.append(self._take()[1])
            operands.append(self._sum())
        return operands[0] if not ops else ("cmp", ops, operands)

    def _sum(self) -> Node:
        left = self._term()
        while self._peek() in ("+", "-"):
            op = self._take()[1]
            left = ("arith", op, left, self._term())
        return left

    def _term(self) -> Node:
        left = self._unary()
        while self._peek() in ("*", "/", "%"):
            op = self._take()[1]
            left = ("arith", op, left, self._unary())
        return left

    def _unary(self) -> Node:
        if self._peek() == "-":
            self._take()
            return ("neg", self._unary())
        return self._atom()

    def _atom(self) -> Node:
        kind, value = self._take()
        if kind == "num":
            return ("num", float(value) if any(c in value for c in ".eE") else int(value))
        if kind == "str":
            return ("num", value[1:-1])
        if kind == "name":
            name = self.resolve(value)
            self.names.add(name)
            return ("name", name)
        if value == "(":
            inner = self.expr()
            if self._take()[1] != ")":
                raise ConstraintError(f"constraint {self.text!r}: missing ')'; {FORM}")
            return inner
        raise ConstraintError(f"constraint {self.text!r}: unexpected {value!r}; {FORM}")


def _evaluate(node: Node, values: Mapping[str, Any]) -> Any:
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "name":
        return values[node[1]]
    if kind == "arith":
        return _ARITH[node[1]](_evaluate(node[2], values), _evaluate(node[3], values))
    if kind == "neg":
        return -_evaluate(node[1], values)
    if kind == "not":
        return not _evaluate(node[1], values)
    if kind == "and":
        return all(_evaluate(x, values) for x in node[1])
    if kind == "or":
        return any(_evaluate(x, values) for x in node[1])
    operands = [_evaluate(x, values) for x in node[2]]
    return all(
        _COMPARE[op](a, b) for op, a, b in zip(node[1], operands, operands[1:], strict=False)
    )
