"""Google partial responses: the ``fields`` selector (``a,b/c,d(e,f)``), parsed once, applied to JSON.

One parser serves Drive and Gmail. A mask is a tree: each node maps a field name to its sub-mask,
or to ``None`` when the whole value is wanted. ``*`` at a level means "every field here".
Selectors are checked against the discovery document's schema, as Google does, so a connector
that misspells a field gets the same 400 it would get from Google.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_*$.-")

Tree = dict[str, "Tree | None"]


class FieldMaskError(ValueError):
    """The selector is malformed or names a field the resource does not have."""


class FieldMask:
    """A parsed ``fields`` selector."""

    __slots__ = ("tree",)

    def __init__(self, tree: Tree) -> None:
        self.tree = tree

    @classmethod
    def parse(cls, text: str) -> FieldMask:
        parser = _Parser(text)
        tree = parser.parse_list(top=True)
        return cls(tree)

    def __repr__(self) -> str:
        return f"FieldMask({_render(self.tree)!r})"

    @property
    def is_everything(self) -> bool:
        return "*" in self.tree

    def selects(self, name: str) -> bool:
        return self.is_everything or name in self.tree

    def sub(self, name: str) -> FieldMask | None:
        """The mask for field ``name``: ``None`` when the whole value is selected.

        Raises KeyError when ``name`` is not selected at all.
        """
        if self.is_everything:
            return None
        node = self.tree[name]
        return None if node is None else FieldMask(node)

    def wanted(self) -> frozenset[str] | None:
        """Top-level names selected, or ``None`` for every field (lets builders skip work)."""
        return None if self.is_everything else frozenset(self.tree)

    def apply(self, value: Any, *, prebuilt: frozenset[str] = frozenset()) -> Any:
        """The selected part of ``value``; top-level keys in ``prebuilt`` are already masked."""
        if not prebuilt or not isinstance(value, dict) or self.is_everything:
            return _apply(value, self.tree)
        return {
            key: item if key in prebuilt else _apply(item, self.tree[key])
            for key, item in value.items()
            if key in self.tree
        }

    def subtree(self, name: str) -> Tree | None:
        """The raw sub-tree for ``name`` (None: whole value), for callers that project themselves."""
        return None if self.is_everything else self.tree[name]

    def validate(self, schemas: Mapping[str, Any], root: str) -> None:
        """Raise FieldMaskError for a selector naming a field schema ``root`` does not declare."""
        _validate(self.tree, schemas, {"$ref": root}, "")


def wanted_of(mask: FieldMask | None) -> frozenset[str] | None:
    return None if mask is None else mask.wanted()


def sub_of(mask: FieldMask | None, name: str) -> FieldMask | None:
    return None if mask is None else mask.sub(name)


def apply_tree(value: Any, node: Tree | None) -> Any:
    return _apply(value, node)


def _apply(value: Any, node: Tree | None) -> Any:
    if node is None or "*" in node:
        return value
    if isinstance(value, list):
        return [_apply(item, node) for item in value]
    if isinstance(value, dict):
        # Keep the resource's own key order, as Google does, not the selector's.
        return {key: _apply(item, node[key]) for key, item in value.items() if key in node}
    return value


def _merge(tree: Tree, path: list[str], sub: Tree | None) -> None:
    *parents, leaf = path
    for name in parents:
        if name in tree and tree[name] is None:
            return  # the whole parent is already selected
        tree = tree.setdefault(name, {})  # type: ignore[assignment]
    if sub is None or tree.get(leaf, ...) is None:
        tree[leaf] = None
        return
    existing = tree.get(leaf)
    if existing is None:
        tree[leaf] = sub
        return
    for key, value in sub.items():
        _merge(existing, [key], value)


def _render(tree: Tree) -> str:
    parts = []
    for name, sub in tree.items():
        parts.append(name if sub is None else f"{name}({_render(sub)})")
    return ",".join(parts)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _error(self, what: str) -> FieldMaskError:
        return FieldMaskError(f"Invalid field selection {self.text!r}: {what} at offset {self.pos}")

    def _skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _name(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _NAME_CHARS:
            self.pos += 1
        if start == self.pos:
            raise self._error("expected a field name")
        return self.text[start : self.pos]

    def parse_list(self, *, top: bool) -> Tree:
        tree: Tree = {}
        while True:
            self._skip_spaces()
            path = [self._name()]
            while self._peek() == "/":
                self.pos += 1
                path.append(self._name())
            sub: Tree | None = None
            if self._peek() == "(":
                self.pos += 1
                sub = self.parse_list(top=False)
                if self._peek() != ")":
                    raise self._error("expected ')'")
                self.pos += 1
            _merge(tree, path, sub)
            self._skip_spaces()
            char = self._peek()
            if char == ",":
                self.pos += 1
                continue
            if top and char == "":
                return tree
            if not top and char == ")":
                return tree
            raise self._error(f"unexpected {char or 'end'!r}")


def _resolve(schemas: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        schema = schemas[schema["$ref"]]
    while schema.get("type") == "array":
        schema = schema.get("items", {})
        while "$ref" in schema:
            schema = schemas[schema["$ref"]]
    return schema


def _validate(node: Tree, schemas: Mapping[str, Any], schema: Mapping[str, Any], prefix: str) -> None:
    schema = _resolve(schemas, schema)
    properties = schema.get("properties")
    additional = schema.get("additionalProperties")
    for name, sub in node.items():
        if name == "*":
            continue
        if properties is not None and name in properties:
            child = properties[name]
        elif additional is not None:
            child = additional  # a map (exportLinks, appProperties): any key is a field
        else:
            raise FieldMaskError(f"Invalid field selection {prefix}{name}")
        if sub is not None:
            child_schema = _resolve(schemas, child)
            if "properties" not in child_schema and "additionalProperties" not in child_schema:
                raise FieldMaskError(f"Invalid field selection {prefix}{name}: it has no sub-fields")
            _validate(sub, schemas, child, f"{prefix}{name}/")
