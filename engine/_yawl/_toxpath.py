"""CEL back to YAWL's XPath predicates and XQuery mappings: the exporter's half of ``_xpath``.

Theory of operation. A small CEL parser reads the subset :mod:`._xpath` writes (and the common
hand-written forms: comparisons, ``&&``, ``||``, ``!``, arithmetic, field selection, ``size()``,
``has()``, ``double()``, ``string()``, ``startsWith``/``endsWith``/``contains``) into the same
AST, which is written as XPath over the net's data document: a variable ``a.b`` is
``/Net/a/b/text()``, ``size(l)`` is ``count(/Net/l/*)``, ``has(a.b)`` is ``exists(/Net/a/b)``, a
boolean variable alone is ``/Net/x/text() = 'true'``. Comparing a variable with a literal records
the type the variable must be declared with, so that reading the predicate back types the literal
the same way. Anything else raises :class:`~._xpath.Untranslatable`.
"""

from __future__ import annotations

import json
import re
from collections.abc import MutableMapping

from ._xpath import ATOM, CEL_RESERVED, LEVEL, Ast, TokenParser, Untranslatable

__all__ = ("cel_to_predicate", "cel_to_query")


# -- CEL: tokens and parser (the subset the importer writes, and common hand-written CEL) ---------

_CEL_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<num>\d+\.\d+(?:[eE][+-]?\d+)?|\d+)
    | (?P<op>==|!=|<=|>=|&&|\|\||<|>|!|\(|\)|\.|\[|\]|,|-|\+|\*|/|%)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


class _CelParser(TokenParser):
    TOKENS = _CEL_TOKEN
    WHAT = "the CEL expression"

    def parse(self) -> Ast:
        node = self.or_()
        if self.peek() is not None:
            raise Untranslatable(f"the CEL construct at {self.peek()[1]!r} has no XPath form here")  # type: ignore[index]
        return node

    def compare(self) -> Ast:
        left = self.additive()
        token = self.peek()
        if token is not None and token[1] in ("==", "!=", "<", "<=", ">", ">="):
            self.take()
            return ("cmp", token[1], left, self.additive())
        return left

    def multiplicative(self) -> Ast:
        node = self.unary()
        while self.peek() in (("op", "*"), ("op", "/"), ("op", "%")):
            op = self.take()[1]
            node = ("arith", op, node, self.unary())
        return node

    def unary(self) -> Ast:
        if self.peek() == ("op", "!"):
            self.take()
            return ("not", self.unary())
        if self.peek() == ("op", "-"):
            self.take()
            kind, value = self.take()
            if kind != "num":
                raise Untranslatable("unary minus is translated for numbers only")
            return ("num", "-" + value)
        return self.postfix()

    def postfix(self) -> Ast:
        node = self.primary()
        while True:
            token = self.peek()
            if token == ("op", "."):
                self.take()
                name = self.take()
                if name[0] != "name":
                    raise Untranslatable("expected a field name after '.'")
                if self.peek() == ("op", "("):
                    args = self.args()
                    node = ("call", name[1], (node, *args))
                elif node[0] == "path":
                    node = ("path", (*node[1], name[1]), None)
                else:
                    raise Untranslatable("selecting a field of a computed value has no XPath form")
            elif token == ("op", "[") and node[0] == "path":
                self.take()
                kind, value = self.take()
                if kind != "str":
                    raise Untranslatable("indexing is translated for string keys only")
                self.expect("]")
                node = ("path", (*node[1], _cel_string(value)), None)
            else:
                return node

    def args(self) -> list[Ast]:
        self.expect("(")
        out: list[Ast] = []
        if self.peek() != ("op", ")"):
            out.append(self.or_())
            while self.peek() == ("op", ","):
                self.take()
                out.append(self.or_())
        self.expect(")")
        return out

    def primary(self) -> Ast:
        kind, value = self.take()
        if kind == "str":
            return ("str", _cel_string(value))
        if kind == "num":
            return ("num", value)
        if value == "(":
            node = self.or_()
            self.expect(")")
            return node
        if kind == "name":
            if value in ("true", "false"):
                return ("bool", value == "true")
            if self.peek() == ("op", "("):
                return ("call", value, tuple(self.args()))
            if value in CEL_RESERVED:
                raise Untranslatable(f"{value!r} has no XPath form")
            return ("path", (value,), None)
        raise Untranslatable(f"the CEL construct at {value!r} has no XPath form")


def _cel_string(token: str) -> str:
    body = token[1:-1]
    if "\\" not in body:
        return body
    if token[0] == '"':
        try:
            value = json.loads(token)
        except ValueError:
            raise Untranslatable("a CEL string escape with no XPath form") from None
        return str(value)
    raise Untranslatable("escapes in single-quoted CEL strings are not translated")


# -- CEL AST → XPath --------------------------------------------------------------------------------


def _xp_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class _ToXPath:
    def __init__(self, root: str, types: MutableMapping[str, str]) -> None:
        self.root = root
        self.types = types

    def note_type(self, path: Ast, literal: Ast) -> None:
        if path[0] != "path" or len(path[1]) != 1:
            return
        kind = {"bool": "boolean", "str": "string"}.get(literal[0])
        if literal[0] == "num":
            kind = "decimal" if "." in literal[1] else "integer"
        if kind is not None:
            self.types.setdefault(path[1][0], kind)

    def path(self, node: Ast, tail: str = "/text()") -> str:
        return "/" + "/".join((self.root, *node[1])) + tail

    def emit(self, node: Ast) -> tuple[str, int]:
        kind = node[0]
        if kind in ("or", "and"):
            level = LEVEL[kind]
            left = self.wrap(node[1], level)
            right = self.wrap(node[2], level)
            return f"{left} {kind} {right}", level
        if kind == "cmp":
            left, right = node[2], node[3]
            self.note_type(left, right)
            self.note_type(right, left)
            op = "=" if node[1] == "==" else node[1]
            return f"{self.operand(left)} {op} {self.operand(right)}", 3
        if kind == "arith":
            level = LEVEL[node[1]]
            op = {"/": "div", "%": "mod"}.get(node[1], node[1])
            return f"{self.operand(node[2], level)} {op} {self.operand(node[3], level + 1)}", level
        if kind == "not":
            inner = node[1]
            if inner[0] == "call" and inner[1] == "has" and len(inner[2]) == 1 and inner[2][0][0] == "path":
                return f"empty({self.path(inner[2][0], '')})", ATOM
            return f"not({self.emit(inner)[0]})", ATOM
        if kind == "bool":
            return ("true()" if node[1] else "false()"), ATOM
        if kind == "call":
            return self.call(node), ATOM
        if kind == "path":  # a boolean variable used as the condition: x is x == true
            self.note_type(node, ("bool", True))
            return f"{self.path(node)} = 'true'", 3
        raise Untranslatable("a literal alone is not a condition")

    def wrap(self, node: Ast, level: int) -> str:
        text, own = self.emit(node)
        return f"({text})" if own < level else text

    def operand(self, node: Ast, level: int = 4) -> str:
        kind = node[0]
        if kind == "path":
            return self.path(node)
        if kind == "str":
            return _xp_string(node[1])
        if kind == "num":
            return str(node[1])
        if kind == "bool":
            return "'true'" if node[1] else "'false'"
        text, own = self.emit(node)
        return f"({text})" if own < level else text

    def call(self, node: Ast) -> str:
        name, args = node[1], node[2]
        if name == "size" and len(args) == 1 and args[0][0] == "path":
            return f"count({self.path(args[0], '/*')})"
        if name == "has" and len(args) == 1 and args[0][0] == "path" and len(args[0][1]) >= 2:
            return f"exists({self.path(args[0], '')})"
        if name in ("double", "string") and len(args) == 1:
            return f"{'number' if name == 'double' else 'string'}({self.operand(args[0], 0)})"
        methods = {"startsWith": "starts-with", "endsWith": "ends-with", "contains": "contains"}
        if name in methods and len(args) == 2:
            return f"{methods[name]}({self.operand(args[0], 0)}, {self.operand(args[1], 0)})"
        raise Untranslatable(f"{name}() has no XPath form here")

    def value(self, node: Ast) -> str:
        if node[0] == "path":
            return self.path(node)
        if node[0] == "str":
            return _xp_string(node[1])
        if node[0] == "num":
            return str(node[1])
        if node[0] == "bool":
            return "true()" if node[1] else "false()"
        if node[0] == "not" or node[0] == "arith" or node[0] in ("cmp", "and", "or", "call"):
            return self.emit(node)[0]
        raise Untranslatable(f"a {node[0]} value has no XQuery form here")


def cel_to_predicate(cel: str, root: str, types: MutableMapping[str, str]) -> str:
    """Write a CEL condition as a YAWL predicate over the net's data document.

    Args:
        cel: the CEL condition.
        root: the data document's root element (the net id).
        types: filled with the kind each variable compared with a literal must be declared with
            (``boolean`` for ``x == true``), so that reading the predicate back gives ``cel``.

    Returns:
        The XPath predicate.

    Raises:
        Untranslatable: the expression has no XPath form here.
    """
    return _ToXPath(root, types).emit(_CelParser(cel).parse())[0]


def cel_to_query(cel: str, target: str, root: str, types: MutableMapping[str, str]) -> str:
    """Write a CEL value as a YAWL mapping query building the element ``target``.

    Args:
        cel: the CEL value (a variable path, a literal, or a translatable call).
        target: the element the query builds (the mapping's target).
        root: the source document's root element.
        types: as for :func:`cel_to_predicate`.

    Returns:
        The XQuery: ``<target>{/root/a/text()}</target>``.

    Raises:
        Untranslatable: the expression has no XQuery form here.
    """
    return f"<{target}>{{{_ToXPath(root, types).value(_CelParser(cel).parse())}}}</{target}>"
