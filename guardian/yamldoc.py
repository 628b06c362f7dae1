"""YAML files validated by a pydantic model, with every problem located for an editor.

Rule files and the subscriptions file are edited by hand at 3 a.m.; a
mistake must come back as ``file:line:column: field.path: message`` for each
problem at once, not as a stack trace. Parsing keeps ruamel's round-trip
nodes so a pydantic error location can be walked back to its line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

Model = TypeVar("Model", bound=BaseModel)
Location = list[int | str]


@dataclass(frozen=True, slots=True)
class YamlProblem:
    """One thing wrong in a YAML file, located for an editor."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.path}: {self.message}"


class YamlProblems(Exception):  # noqa: N818 - a carrier of problems, re-raised as the caller's error
    """Raised by ``parse_located``; callers turn ``problems`` into their own ConfigError."""

    def __init__(self, problems: Sequence[YamlProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = list(problems)


def _without_union_tags(loc: Sequence[int | str]) -> Location:
    """Drop the tags pydantic adds to locations inside unions (``function-after[...]``)."""
    return [p for p in loc if not (isinstance(p, str) and "[" in p)]


def parse_located(
    model: type[Model],
    text: str,
    filename: str,
    clean_loc: Callable[[Sequence[int | str]], Location] = _without_union_tags,
) -> tuple[Model, Any]:
    """Validate YAML text against ``model``; return it and the round-trip tree (for lines).

    Raises ``YamlProblems`` listing a syntax error, or every validation error.
    """
    try:
        root = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise YamlProblems([YamlProblem(filename, line, col, "(file)", str(exc.problem))]) from None
    if root is None:
        root = CommentedMap()
    try:
        return model.model_validate(plain(root)), root
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = clean_loc(err["loc"])
            line, col = position(root, loc)
            message = err["msg"].removeprefix("Value error, ")
            problems.append(YamlProblem(filename, line, col, loc_path(loc), message))
        raise YamlProblems(problems) from None


def plain(node: Any) -> Any:  # noqa: PLR0911 - one return per YAML scalar type
    """Round-trip nodes as plain dicts, lists and scalars, so pydantic sees ordinary values."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def position(root: Any, loc: Sequence[int | str]) -> tuple[int, int]:
    """Walk the YAML tree along a location; the 1-based line/column of the deepest node."""
    node, line, col = root, 0, 0
    for part in loc:
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            line, col = node.lc.key(part)
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line, col = node.lc.item(part)
        else:
            break
        node = node[part]
    return line + 1, col + 1


def loc_path(loc: Iterable[int | str]) -> str:
    """A location as a field path: ``rules[1].condition.baseline``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(file)"
