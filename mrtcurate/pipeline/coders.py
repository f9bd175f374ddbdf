"""Compact, deterministic coders for the records the job shuffles.

Without them Beam encodes a `Candidate` dataclass and a numpy vector through its pickle fallback. One
encode plus decode, measured by benchmarks/coders.py on this machine: a candidate 7.5 us pickled against
3.3 us as a tuple (2.3x), a candidate with its 384-d vector 19.7 us against 6.0 us (3.3x). Every candidate
crosses several shuffles and materialisations, so at a million responses that was tens of seconds.
A PCollection gets these coders from its type hint (`Candidate`, `Member`,
`Tuple[str, Member]`...); the hints sit on the transforms that produce shuffled or materialised collections.

Each goes through a tuple of plain values (`to_plain`, `from_plain`): Beam's FastPrimitivesCoder encodes the tuple
where Beam shuffles it, and the local runner's segment files (spill.py) pickle it.
"""

from __future__ import annotations

import typing

import numpy as np
from apache_beam import coders

from mrtcurate.schemas import Candidate
from mrtcurate.schemas.records import Message, candidate_of

_TUPLES = coders.FastPrimitivesCoder()


def _candidate_fields(candidate: Candidate) -> tuple:
    messages = None if candidate.messages is None else tuple((turn.role, turn.content) for turn in candidate.messages)
    return (
        candidate.prompt_id, candidate.response_id, candidate.prompt, candidate.completion, candidate.reward,
        candidate.source, messages, candidate.multiplicity, candidate.feature, candidate.origins,
    )  # fmt: skip


def _candidate(fields: tuple) -> Candidate:
    prompt_id, response_id, prompt, completion, reward, source, messages, multiplicity, feature, origins = fields
    if messages is not None:
        messages = tuple(Message(role, content) for role, content in messages)
    return candidate_of(
        (prompt_id, response_id, prompt, completion, reward, source, messages, multiplicity, feature, origins)
    )


def _vector_bytes(vector: np.ndarray | None) -> bytes | None:
    return None if vector is None else np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def _vector(data: bytes | None) -> np.ndarray | None:
    # A copy: frombuffer's view would be read-only and pin the decoded bytes.
    return None if data is None else np.frombuffer(data, dtype=np.float32).copy()


class PlainCoder(coders.Coder):
    """A deterministic coder through a tuple of plain values."""

    def to_plain(self, item) -> tuple:
        raise NotImplementedError

    def from_plain(self, plain: tuple):
        raise NotImplementedError

    def weight(self, items: list) -> int:
        """What a batch of items counts for towards a segment writer's limit (spill.ITEMS_PER_FILE): one per item,
        or their rows. Per batch: a generator over every member was 1% of a qd run."""
        return len(items)

    def encode(self, item) -> bytes:
        return _TUPLES.encode(self.to_plain(item))

    def decode(self, encoded: bytes):
        return self.from_plain(_TUPLES.decode(encoded))

    def is_deterministic(self) -> bool:
        return True


class CandidateCoder(PlainCoder):
    def to_plain(self, candidate: Candidate) -> tuple:
        return _candidate_fields(candidate)

    def from_plain(self, fields: tuple) -> Candidate:
        return _candidate(fields)

    def to_type_hint(self):
        return Candidate


class Member:
    """Type hint of a (candidate, unit vector or None) pair, the unit selection works on."""


class MemberCoder(PlainCoder):
    def to_plain(self, member: tuple[Candidate, np.ndarray | None]) -> tuple:
        candidate, vector = member
        return _candidate_fields(candidate), _vector_bytes(vector)

    def from_plain(self, plain: tuple) -> tuple[Candidate, np.ndarray | None]:
        fields, vector = plain
        return _candidate(fields), _vector(vector)

    def to_type_hint(self):
        return Member


class Vector:
    """Type hint of a float32 vector."""


class VectorCoder(coders.Coder):
    def encode(self, vector: np.ndarray) -> bytes:
        return _vector_bytes(vector)

    def decode(self, encoded: bytes) -> np.ndarray:
        return _vector(encoded)

    def is_deterministic(self) -> bool:
        return True

    def to_type_hint(self):
        return Vector


class PromptVector:
    """Type hint of a (prompt id, float32 vector) pair."""


class PromptVectorCoder(PlainCoder):
    def to_plain(self, pair: tuple[str, np.ndarray]) -> tuple:
        prompt_id, vector = pair
        return prompt_id, _vector_bytes(vector)

    def from_plain(self, plain: tuple) -> tuple[str, np.ndarray]:
        prompt_id, vector = plain
        return prompt_id, _vector(vector)

    def to_type_hint(self):
        return PromptVector


class PlainValuesCoder(PlainCoder):
    """Values that are plain already (rows as dicts, tuples of strings and numbers): Beam's FastPrimitivesCoder."""

    def to_plain(self, item):
        return item

    def from_plain(self, plain):
        return plain

    def to_type_hint(self):
        return typing.Any


class ArrowTablesCoder(PlainValuesCoder):
    """Arrow tables, which pickle as their buffers; each weighs its rows, so a writer holding them flushes by rows."""

    def weight(self, tables: list) -> int:
        return sum(max(1, table.num_rows) for table in tables)


coders.registry.register_coder(Candidate, CandidateCoder)
coders.registry.register_coder(Member, MemberCoder)
coders.registry.register_coder(Vector, VectorCoder)
coders.registry.register_coder(PromptVector, PromptVectorCoder)
