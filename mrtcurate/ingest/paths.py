"""Field paths: where in a record a field option points.

`prompt` is a top-level field, `response.body.text` a nested one, `conversations[0].value` an element of
a list, and `completions[*].response` fans out over a list: one value per element. Paths under the same
`[*]` stay aligned (`completions[*].response` with `completions[*].overall_score`), because both take
element i of the same list. A key that holds a dot (a CSV header "response.text") is found as written
before the path is split. Hand-written rather than JSONPath (jsonpath-ng and friends): the grammar is
three constructs, and a failure must say which step of which record failed, for a reject's detail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from mrtcurate.schemas import RejectReason

FAN = "*"
_STEP = re.compile(r"([^.\[\]]+)|\[(\*|-?\d+)\]|(\.)")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()  # the path leads nowhere in this record (distinct from a null value)


class PathError(Exception):
    """The record's shape contradicts the path: `[*]` over something that is not a list, or an empty one."""

    def __init__(self, reason: RejectReason, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class FieldPath:
    text: str
    steps: tuple[str | int, ...]  # keys, list indexes, and at most one FAN

    @property
    def fans_out(self) -> bool:
        return FAN in self.steps

    def get(self, fields: dict) -> object:
        """The value at a path without `[*]`, or MISSING."""
        if self.text in fields:
            return fields[self.text]
        return _walk(fields, self.steps)

    def fan(self, fields: dict) -> list | _Missing:
        """One value per element of the `[*]` list (MISSING for an element that lacks the rest of the
        path), or MISSING when the list itself is absent."""
        split = self.steps.index(FAN)
        where = _render(self.steps[:split])
        items = _walk(fields, self.steps[:split])
        if items is MISSING or items is None:
            return MISSING
        if not isinstance(items, list):
            raise PathError(
                RejectReason.NOT_A_LIST, f"'{where}' in '{self.text}' is a {type(items).__name__}, not a list"
            )
        if not items:
            raise PathError(RejectReason.EMPTY_LIST, f"'{where}' in '{self.text}' is an empty list")
        rest = self.steps[split + 1 :]
        return [_walk(item, rest) for item in items]

    def element(self, index: int) -> str:
        """How a reject names one fanned-out value: completions[2].response."""
        if not self.fans_out:
            return f"{self.text}[{index}]"
        return _render(tuple(index if step == FAN else step for step in self.steps))

    def missing_detail(self, fields: dict) -> str:
        """Where the path stops leading anywhere in this record, and what is there instead."""
        holder: object = fields
        steps = tuple(0 if step == FAN else step for step in self.steps)  # the first element stands for all
        for depth, step in enumerate(steps):
            found = _step(holder, step)
            if found is MISSING or found is None:
                where = _render(steps[:depth]) or "the record"
                offered = (
                    f"; its keys: {', '.join(sorted(ascii(str(key))[1:-1] for key in holder)[:12])}"
                    if isinstance(holder, dict) and holder
                    else ""
                )
                state = (
                    "is null"
                    if found is None
                    else "has no " + (f"'{step}'" if isinstance(step, str) else f"element {step}")
                )
                return f"no '{self.text}': {where} {state}{offered}"
            holder = found
        return f"no '{self.text}'"


def value(fields: dict, path: str) -> object:
    """The value at a path without `[*]`, with a path that leads nowhere read as null."""
    found = parse(path).get(fields)
    return None if found is MISSING else found


ROOT = "$"


@lru_cache(maxsize=256)
def parse(text: str) -> FieldPath:
    """A path's steps; raises ValueError for a malformed one (checked once, when the config is built). `$`, as
    in JSONPath, is the record itself (a tree whose every line is its root message)."""
    if text == ROOT:
        return FieldPath(text, ())
    steps: list[str | int] = []
    position, expect_key = 0, True
    for match in _STEP.finditer(text):
        if match.start() != position:
            break
        key, index, dot = match.groups()
        if dot:
            if expect_key:
                raise ValueError(f"field path '{text}' has an empty step")
            expect_key = True
        elif key is not None:
            if not expect_key:
                raise ValueError(f"field path '{text}': put a dot between '{steps[-1]}' and '{key}'")
            steps.append(key)
            expect_key = False
        else:
            steps.append(FAN if index == FAN else int(index))
            expect_key = False
        position = match.end()
    if position != len(text) or not steps or expect_key:
        raise ValueError(
            f"field path '{text}' is malformed (use dots for nesting, [N] for an element, [*] for every element)"
        )
    if steps.count(FAN) > 1:
        raise ValueError(f"field path '{text}' has more than one [*]; one list per path can fan out")
    return FieldPath(text, tuple(steps))


def _step(holder: object, step: str | int) -> object:
    if isinstance(step, int):
        return holder[step] if isinstance(holder, list) and -len(holder) <= step < len(holder) else MISSING
    return holder.get(step, MISSING) if isinstance(holder, dict) else MISSING


def _walk(holder: object, steps: tuple) -> object:
    for step in steps:
        if holder is None:
            return MISSING
        holder = _step(holder, step)
        if holder is MISSING:
            return MISSING
    return holder


def _render(steps: tuple) -> str:
    text = ""
    for step in steps:
        if isinstance(step, str) and step != FAN:
            text += f".{step}" if text else step
        else:
            text += f"[{step}]"
    return text
