"""YAWL's XPath/XQuery expressions to CEL and back, for the forms that have an exact equivalent.

Theory of operation. YAWL predicates are XPath 2.0 over the net's data document (root element:
the net id, or ``data`` in Beta 2); its data mappings are XQuery that build an element named
after their target. yawlflow's expressions are CEL over the case data's top-level keys. Both
directions go through one small AST (``Ast`` tuples):

* :func:`predicate_to_cel` reads a predicate: comparisons (``= != < <= > >=``), ``and``,
  ``or``, ``not()``, ``true()``/``false()``, ``boolean()``, ``number()``, ``string()``,
  ``count(path/*)``, ``exists()``/``empty()`` of nested paths, ``starts-with()``,
  ``ends-with()``, ``contains()``, ``string-length()``, string and number literals, and
  paths ``/Root/a/b[/text()]``. A path drops its first step (the document root) and reads the
  rest as CEL selection: ``/Net/order/total/text()`` → ``order.total``. A string literal
  compared with a declared variable takes the variable's type: ``/Net/ok = 'true'`` with ``ok``
  an ``xs:boolean`` is ``ok == true``.
* :func:`query_to_cel` reads a mapping: ``<v>{expr}</v>``, a bare path, or a constant element
  ``<v>text</v>`` (typed by the target).
* ``_toxpath`` writes the same subset back (:func:`~._toxpath.cel_to_predicate`,
  :func:`~._toxpath.cel_to_query`); on what this module produces they are exact inverses, so
  yawl → spec → yawl → spec is stable.

Anything else raises :class:`Untranslatable` with the reason; the importer reports it with its
place and the side-file key that supplies the CEL by hand.
"""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = (
    "ATOM",
    "CEL_RESERVED",
    "LEVEL",
    "Ast",
    "Untranslatable",
    "cel_literal",
    "is_cel_identifier",
    "predicate_to_cel",
    "query_to_cel",
    "typed_value",
)

Ast = tuple[Any, ...]
"""AST node: ``(kind, ...)``; kinds: path, str, num, bool, cmp, and, or, not, call."""

SIMPLE_KINDS = ("boolean", "integer", "decimal", "string")

CEL_RESERVED = frozenset(
    [
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ]
)
_CEL_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INT = re.compile(r"-?\d+\Z")
_DEC = re.compile(r"-?(\d+\.\d*|\.\d+|\d+)\Z")


class Untranslatable(Exception):
    """An expression outside the translatable subset.

    Attributes:
        reason: why, in a few words (``random() has no CEL equivalent``).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_cel_identifier(name: str) -> bool:
    """Whether ``name`` can be written bare in CEL (``amount``, not ``in`` or ``a-b``)."""
    return bool(_CEL_IDENT.match(name)) and name not in CEL_RESERVED


def typed_value(text: str, kind: str | None) -> Any:
    """A YAWL value written as text, as the Python value of its declared kind.

    ``boolean`` → ``True``/``False`` (``true``/``1``, ``false``/``0``), ``integer`` → int,
    ``decimal`` → float; anything else (or text that does not fit) stays a string.
    """
    value = text.strip()
    if kind == "boolean" and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if kind == "integer" and _INT.match(value):
        return int(value)
    if kind == "decimal" and _DEC.match(value):
        return float(value)
    return text


def cel_literal(value: Any) -> str:
    """A Python scalar as a CEL literal (``True`` → ``true``, ``"a"`` → ``"a"``, ``1.5`` → ``1.5``).

    Raises:
        Untranslatable: the value is not a bool, int, float or str.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if text in ("inf", "-inf", "nan"):
            raise Untranslatable(f"{text} has no CEL literal")
        return text
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise Untranslatable(f"a {type(value).__name__} constant has no CEL literal")


# -- XPath: tokens and parser --------------------------------------------------------------------

_XP_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^']|'')*'|"(?:[^"]|"")*")
    | (?P<num>\d+(?:\.\d*)?|\.\d+)
    | (?P<op>!=|<=|>=|=|<|>|\(|\)|,|//|/|\*|@|\[|\]|\$|\||\+|-|\{|\}|:=|::)
    | (?P<name>[A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)
    )""",
    re.VERBOSE,
)


def tokenize(pattern: re.Pattern[str], text: str, what: str) -> list[tuple[str, str]]:
    """``text`` as (kind, value) tokens of ``pattern``'s named groups (whitespace between them skipped).

    Raises:
        Untranslatable: a part of ``text`` is no token of ``pattern`` (``what`` names the language).
    """
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = pattern.match(text, pos)
        if match is None or match.end() == pos:
            raise Untranslatable(f"cannot read {what} at {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


class TokenParser(abc.ABC):
    """The shared part of the XPath and CEL parsers: tokens, and the binary levels both grammars
    share (or, and, additive); a subclass names its tokens and operators and writes the rest."""

    TOKENS: re.Pattern[str]
    WHAT = "the expression"
    OR: tuple[str, str] = ("op", "||")
    AND: tuple[str, str] = ("op", "&&")

    def __init__(self, text: str) -> None:
        self.tokens = tokenize(self.TOKENS, text, self.WHAT)
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        at = self.pos + offset
        return self.tokens[at] if at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise Untranslatable(f"{self.WHAT} ends too early")
        self.pos += 1
        return token

    def expect(self, value: str) -> None:
        token = self.take()
        if token[1] != value:
            raise Untranslatable(f"expected {value!r} in {self.WHAT}, found {token[1]!r}")

    def or_(self) -> Ast:
        node = self.and_()
        while self.peek() == self.OR:
            self.take()
            node = ("or", node, self.and_())
        return node

    def and_(self) -> Ast:
        node = self.compare()
        while self.peek() == self.AND:
            self.take()
            node = ("and", node, self.compare())
        return node

    @abc.abstractmethod
    def compare(self) -> Ast:
        """One comparison (each grammar has its own operators)."""

    @abc.abstractmethod
    def multiplicative(self) -> Ast:
        """A product (each grammar has its own operators)."""

    def additive(self) -> Ast:
        node = self.multiplicative()
        while self.peek() in (("op", "+"), ("op", "-")):
            op = self.take()[1]
            node = ("arith", op, node, self.multiplicative())
        return node


_FUNCTIONS = {
    "true", "false", "not", "boolean", "number", "string", "count", "exists", "empty",
    "starts-with", "ends-with", "contains", "string-length",
}  # fmt: skip
_COMPARE = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class _XPathParser(TokenParser):
    TOKENS = _XP_TOKEN
    OR = ("name", "or")
    AND = ("name", "and")

    def parse(self) -> Ast:
        node = self.or_()
        if self.peek() is not None:
            token = self.peek()
            raise Untranslatable(f"unsupported XPath at {token[1] if token else ''!r}")
        return node

    def compare(self) -> Ast:
        left = self.additive()
        token = self.peek()
        if token is not None and token[0] == "op" and token[1] in _COMPARE:
            self.take()
            return ("cmp", _COMPARE[token[1]], left, self.additive())
        if token is not None and token[1] in ("|", "eq", "ne", "lt", "gt", "le", "ge", "to", "idiv"):
            raise Untranslatable(f"the operator {token[1]!r} is not translated")
        return left

    def multiplicative(self) -> Ast:
        node = self.operand()
        while self.peek() in (("op", "*"), ("name", "div"), ("name", "mod")):
            op = {"*": "*", "div": "/", "mod": "%"}[self.take()[1]]
            node = ("arith", op, node, self.operand())
        return node

    def operand(self) -> Ast:
        token = self.peek()
        if token is None:
            raise Untranslatable("the expression ends too early")
        kind, value = token
        if kind == "str":
            self.take()
            quote = value[0]
            return ("str", value[1:-1].replace(quote * 2, quote))
        if kind == "num":
            self.take()
            value = ("0" + value) if value.startswith(".") else value
            return ("num", value + "0" if value.endswith(".") else value)
        if value == "(":
            self.take()
            node = self.or_()
            self.expect(")")
            return node
        if value == "-" and self.peek(1) is not None and self.peek(1)[0] == "num":  # type: ignore[index]
            self.take()
            return ("num", "-" + self.take()[1])
        if kind == "name" and self.peek(1) == ("op", "(") and value not in ("text", "node"):
            return self.call()
        if value == "//":
            raise Untranslatable("'//' (any depth) is not translated")
        if value == "/" or kind == "name":
            return self.path()
        raise Untranslatable(f"unsupported XPath at {value!r}")

    def call(self) -> Ast:
        name = self.take()[1]
        bare = name.removeprefix("fn:")
        self.expect("(")
        args: list[Ast] = []
        if self.peek() != ("op", ")"):
            args.append(self.or_())
            while self.peek() == ("op", ","):
                self.take()
                args.append(self.or_())
        self.expect(")")
        if bare not in _FUNCTIONS:
            raise Untranslatable(f"{name}() has no CEL equivalent")
        return ("call", bare, tuple(args))

    def path(self) -> Ast:
        steps: list[str] = []
        tail: str | None = None
        if self.peek() == ("op", "/"):
            self.take()
        while True:
            token = self.take()
            kind, value = token
            if value == "*":
                tail = "star"
            elif kind == "name" and value in ("text", "node") and self.peek() == ("op", "("):
                self.take()
                self.expect(")")
                tail = "text" if value == "text" else "star"
            elif kind == "name" and ":" not in value:
                steps.append(value)
            else:
                raise Untranslatable(f"the path step {value!r} is not translated (only /Root/a/b)")
            following = self.peek()
            if following == ("op", "//"):
                raise Untranslatable("'//' (any depth) is not translated")
            if following in (("op", "["), ("op", "@"), ("op", "::")):
                raise Untranslatable("path predicates and axes are not translated")
            if following != ("op", "/") or tail is not None:
                break
            self.take()
        if tail is not None and self.peek() == ("op", "/"):
            raise Untranslatable("a step after text() or * is not translated")
        return ("path", tuple(steps), tail)


# -- XPath AST → CEL -------------------------------------------------------------------------------

LEVEL = {"or": 1, "and": 2, "cmp": 3, "+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "not": 6}
ATOM = 9


def _cel_path(steps: tuple[str, ...]) -> str:
    if len(steps) < 2:
        raise Untranslatable("a path must name a variable below the root: /Root/variable")
    first, rest = steps[1], steps[2:]
    if not is_cel_identifier(first):
        raise Untranslatable(f"the variable name {first!r} is not a CEL identifier")
    out = first
    for step in rest:
        out += f".{step}" if is_cel_identifier(step) else f"[{json.dumps(step)}]"
    return out


class _ToCel:
    def __init__(self, types: Mapping[str, str]) -> None:
        self.types = types

    def var_kind(self, node: Ast) -> str | None:
        if node[0] == "path" and len(node[1]) == 2:
            return self.types.get(node[1][1])
        return None

    def literal(self, node: Ast, kind: str | None) -> str:
        if node[0] == "num":
            return str(node[1])
        return cel_literal(typed_value(node[1], kind) if kind in ("boolean", "integer", "decimal") else node[1])

    def emit(self, node: Ast, *, boolean: bool) -> tuple[str, int]:
        """CEL text and its precedence level (5: atomic)."""
        kind = node[0]
        if kind == "or" or kind == "and":
            op = "||" if kind == "or" else "&&"
            level = LEVEL[kind]
            left = self.wrap(node[1], level, boolean=True)
            right = self.wrap(node[2], level, boolean=True)
            return f"{left} {op} {right}", level
        if kind == "cmp":
            left_node, right_node = node[2], node[3]
            left = self.operand(left_node, self.var_kind(right_node))
            right = self.operand(right_node, self.var_kind(left_node))
            return f"{left} {node[1]} {right}", 3
        if kind == "arith":
            level = LEVEL[node[1]]
            left = self.operand(node[2], None, level)
            right = self.operand(node[3], None, level + 1)
            return f"{left} {node[1]} {right}", level
        if kind == "bool":
            return ("true" if node[1] else "false"), ATOM
        if kind == "call":
            return self.call(node)
        if boolean:
            raise Untranslatable("a path or a literal alone is not a condition (compare it with a value)")
        return self.operand(node, None), ATOM

    def wrap(self, node: Ast, level: int, *, boolean: bool) -> str:
        text, own = self.emit(node, boolean=boolean)
        return f"({text})" if own < level else text

    def operand(self, node: Ast, kind: str | None, level: int = 4) -> str:
        if node[0] == "path":
            if node[2] == "star":
                raise Untranslatable("comparing a whole subtree (/*) is not translated")
            return _cel_path(node[1])
        if node[0] in ("str", "num"):
            return self.literal(node, kind)
        text, own = self.emit(node, boolean=False)
        return f"({text})" if own < level else text

    def value(self, node: Ast) -> str:
        """A mapping's value expression: a path (its text or its whole subtree) or a call."""
        if node[0] == "path":
            return _cel_path(node[1])
        return self.emit(node, boolean=False)[0]

    def call(self, node: Ast) -> tuple[str, int]:
        name, args = node[1], node[2]

        def arity(n: int) -> None:
            if len(args) != n:
                raise Untranslatable(f"{name}() takes {n} argument{'s' * (n != 1)} here")

        if name in ("true", "false"):
            arity(0)
            return name, ATOM
        if name == "not":
            arity(1)
            inner, level = self.emit(args[0], boolean=True)
            return (f"!{inner}" if level >= ATOM else f"!({inner})"), LEVEL["not"]
        if name == "boolean":
            arity(1)
            if args[0][0] in ("path", "str", "num"):
                raise Untranslatable("boolean() of a path tests whether it exists, which CEL cannot ask of a variable")
            return self.emit(args[0], boolean=True)
        if name in ("number", "string"):
            arity(1)
            return f"{'double' if name == 'number' else 'string'}({self.operand(args[0], None, 0)})", ATOM
        if name in ("count", "string-length"):
            arity(1)
            target = args[0]
            if name == "count" and not (target[0] == "path" and target[2] == "star"):
                raise Untranslatable("count() is translated for /Root/list/* only")
            inner = _cel_path(target[1]) if target[0] == "path" else self.operand(target, None, 0)
            return f"size({inner})", ATOM
        if name in ("exists", "empty"):
            arity(1)
            target = args[0]
            if target[0] != "path" or target[2] is not None or len(target[1]) < 3:
                raise Untranslatable(
                    f"{name}() is translated for nested paths /Root/a/b only (CEL has() needs a field)"
                )
            text = f"has({_cel_path(target[1])})"
            return (text, ATOM) if name == "exists" else ("!" + text, LEVEL["not"])
        # starts-with, ends-with, contains
        arity(2)
        method = {"starts-with": "startsWith", "ends-with": "endsWith", "contains": "contains"}[name]
        receiver = self.operand(args[0], None, ATOM)
        return f"{receiver}.{method}({self.operand(args[1], None, 0)})", ATOM


def _simplify(node: Ast) -> Ast:
    """``true()``/``false()`` calls become boolean nodes."""
    if node[0] == "call" and node[1] in ("true", "false") and not node[2]:
        return ("bool", node[1] == "true")
    return node


def predicate_to_cel(xpath: str, types: Mapping[str, str] | None = None) -> str:
    """Translate a YAWL flow predicate (XPath) to CEL.

    Args:
        xpath: the predicate as written.
        types: the declared kind (``boolean``, ``integer``, ``decimal``, ``string``) of each
            net variable; a string literal compared with one of them takes its kind.

    Returns:
        The CEL expression.

    Raises:
        Untranslatable: the predicate is outside the translated subset.
    """
    node = _simplify(_XPathParser(xpath).parse())
    return _ToCel(types or {}).emit(node, boolean=True)[0]


_COPY = re.compile(
    r"for\s+\$(?P<var>\w+)\s+in\s+(?P<path>/?[\w.\-]+(?:/[\w.\-]+)*(?:/\*)?)\s+return\s+\$(?P=var)(?:/text\(\)|/\*)?\Z"
)
_CONSTRUCTOR = re.compile(r"<(?P<name>[A-Za-z_][\w.\-]*)\s*(?:/>|>(?P<body>.*)</(?P=name)\s*>)\Z", re.DOTALL)


def query_to_cel(query: str, kind: str | None = None, types: Mapping[str, str] | None = None) -> str:
    """Translate a YAWL data mapping (XQuery) to the CEL of its value.

    Args:
        query: the mapping's query: ``<v>{/Net/a/text()}</v>``, ``<v>{/Net/a/*}</v>``, a bare
            path ``/data/a``, or a constant ``<v>text</v>``.
        kind: the declared kind of the mapping's target (types a constant).
        types: the declared kinds of the variables the query reads.

    Returns:
        The CEL expression.

    Raises:
        Untranslatable: the query is outside the translated subset.
    """
    text = query.strip()
    to_cel = _ToCel(types or {})
    match = _CONSTRUCTOR.match(text)
    if match is None:
        if text.startswith("<"):
            raise Untranslatable("an element constructor with attributes or several children is not translated")
        return to_cel.value(_simplify(_XPathParser(text).parse()))
    body = match.group("body") or ""
    stripped = body.strip()
    if stripped.startswith("{") and stripped.endswith("}") and stripped.count("{") == 1:
        inner = stripped[1:-1].strip()
        copy = _COPY.match(inner)  # for $d in /Net/list/* return $d: the list's children, copied
        if copy is not None:
            inner = copy.group("path")
        return to_cel.value(_simplify(_XPathParser(inner).parse()))
    if any(c in body for c in "{}<&"):
        raise Untranslatable("mixed content (several expressions or elements) is not translated")
    return cel_literal(typed_value(body, kind))
