"""The Drive ``q`` search language, compiled to a predicate over a file record.

Grammar (a subset of https://developers.google.com/workspace/drive/api/guides/ref-search-terms):
``expr := and_expr ('or' and_expr)*``, ``and_expr := unary ('and' unary)*``,
``unary := 'not' unary | '(' expr ')' | term``, and the terms

* ``name|mimeType|fullText (=|!=|contains) 'text'``
* ``modifiedTime|createdTime (=|!=|<|<=|>|>=) 'RFC 3339'`` (UTC when no offset is given)
* ``trashed|starred|sharedWithMe (=|!=) true|false``
* ``'<id>' in parents`` (``'root'`` too), ``'<email>' in owners|writers|readers`` (``'me'`` too)

Anything else is refused with 400, as Google refuses a query it cannot parse.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from monolyth_pipelines.emulator.errors import ApiError
from monolyth_pipelines.emulator.timeutil import parse_rfc3339_ms


class QueryFile(Protocol):
    """What a predicate reads: the Drive store's file record plus its account context."""

    name: str
    mime: str
    modified_ms: int
    created_ms: int
    trashed: bool
    parent: str | None


@dataclass(frozen=True)
class QueryContext:
    """Account facts a term needs but a record does not hold."""

    root_id: str
    owner_email: Callable[[QueryFile], str | None]
    me: str


Predicate = Callable[[QueryFile], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*')
      | (?P<op><=|>=|!=|=|<|>)
      | (?P<paren>[()])
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<number>-?\d+)
    )""",
    re.VERBOSE,
)
_TEXT_FIELDS = frozenset({"name", "mimetype", "fulltext"})
_TIME_FIELDS = frozenset({"modifiedtime", "createdtime"})
_BOOL_FIELDS = frozenset({"trashed", "starred", "sharedwithme"})
_IN_FIELDS = frozenset({"parents", "owners", "writers", "readers"})


def invalid_query(detail: str) -> ApiError:
    return ApiError(400, "Invalid Value", "invalid", location="q", top_message=f"Invalid Value: {detail}")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise invalid_query(f"unexpected character at offset {pos}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def parse_time_ms(value: str) -> int:
    try:
        return parse_rfc3339_ms(value)
    except ValueError:
        raise invalid_query(f"bad date-time {value!r}") from None


class _Parser:
    def __init__(self, text: str, context: QueryContext) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.context = context

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise invalid_query("unexpected end of query")
        self.pos += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1].lower() == word:
            self.pos += 1
            return True
        return False

    def parse(self) -> Predicate:
        predicate = self.expr()
        if self.peek() is not None:
            raise invalid_query(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return predicate

    def expr(self) -> Predicate:
        terms = [self.and_expr()]
        while self.keyword("or"):
            terms.append(self.and_expr())
        if len(terms) == 1:
            return terms[0]
        return lambda f: any(term(f) for term in terms)

    def and_expr(self) -> Predicate:
        terms = [self.unary()]
        while self.keyword("and"):
            terms.append(self.unary())
        if len(terms) == 1:
            return terms[0]
        return lambda f: all(term(f) for term in terms)

    def unary(self) -> Predicate:
        if self.keyword("not"):
            inner = self.unary()
            return lambda f: not inner(f)
        token = self.peek()
        if token == ("paren", "("):
            self.pos += 1
            inner = self.expr()
            if self.take() != ("paren", ")"):
                raise invalid_query("expected ')'")
            return inner
        return self.term()

    def term(self) -> Predicate:
        kind, value = self.take()
        if kind == "string":
            if not self.keyword("in"):
                raise invalid_query("expected 'in' after a string")
            kind2, field_name = self.take()
            if kind2 != "word" or field_name.lower() not in _IN_FIELDS:
                raise invalid_query(f"cannot search 'in' {field_name!r}")
            return self.membership(_unquote(value), field_name.lower())
        if kind != "word":
            raise invalid_query(f"unexpected {value!r}")
        name = value.lower()
        if name in _TEXT_FIELDS:
            return self.text_term(name)
        if name in _TIME_FIELDS:
            return self.time_term(name)
        if name in _BOOL_FIELDS:
            return self.bool_term(name)
        raise invalid_query(f"unsupported field {value!r}")

    def membership(self, literal: str, field_name: str) -> Predicate:
        if field_name == "parents":
            target = self.context.root_id if literal == "root" else literal
            return lambda f: f.parent == target
        owner_email = self.context.owner_email
        if literal == "me":
            literal = self.context.me
        if field_name == "owners":
            return lambda f: owner_email(f) == literal
        # writers/readers: the emulator models no sharing beyond the owner and "me".
        me = self.context.me
        return lambda f: literal in (owner_email(f), me)

    def text_term(self, name: str) -> Predicate:
        kind, op = self.take()
        if not (kind == "op" and op in ("=", "!=")) and not (kind == "word" and op.lower() == "contains"):
            raise invalid_query(f"operator {op!r} not allowed for {name}")
        kind, literal = self.take()
        if kind != "string":
            raise invalid_query(f"{name} needs a quoted string")
        text = _unquote(literal)
        getter: Callable[[QueryFile], str] = (lambda f: f.mime) if name == "mimetype" else (lambda f: f.name)
        if op == "=":
            return lambda f: getter(f) == text
        if op == "!=":
            return lambda f: getter(f) != text
        needle = text.lower()
        return lambda f: needle in getter(f).lower()

    def time_term(self, name: str) -> Predicate:
        kind, op = self.take()
        if kind != "op":
            raise invalid_query(f"{name} needs a comparison operator")
        kind, literal = self.take()
        if kind != "string":
            raise invalid_query(f"{name} needs a quoted date-time")
        bound = parse_time_ms(_unquote(literal))
        attr = "modified_ms" if name == "modifiedtime" else "created_ms"
        compare: dict[str, Callable[[int], bool]] = {
            "=": lambda v: v == bound,
            "!=": lambda v: v != bound,
            "<": lambda v: v < bound,
            "<=": lambda v: v <= bound,
            ">": lambda v: v > bound,
            ">=": lambda v: v >= bound,
        }
        check = compare[op]
        return lambda f: check(getattr(f, attr))

    def bool_term(self, name: str) -> Predicate:
        kind, op = self.take()
        if kind != "op" or op not in ("=", "!="):
            raise invalid_query(f"operator {op!r} not allowed for {name}")
        kind, literal = self.take()
        if kind != "word" or literal.lower() not in ("true", "false"):
            raise invalid_query(f"{name} needs true or false")
        wanted = (literal.lower() == "true") == (op == "=")
        if name == "trashed":
            return lambda f: f.trashed == wanted
        if name == "starred":
            return lambda f: not wanted  # nothing is starred in the emulator
        owner_email = self.context.owner_email
        me = self.context.me
        return lambda f: (owner_email(f) not in (None, me)) == wanted


def compile_query(text: str | None, context: QueryContext) -> Predicate | None:
    """The predicate for ``q``, or ``None`` for no filter. Raises ApiError(400) when unparseable."""
    if text is None or text.strip() == "":
        return None
    return _Parser(text, context).parse()
