import numpy as np
import pytest

from mrtcurate.pipeline.coders import CandidateCoder, MemberCoder, PlainValuesCoder, PromptVectorCoder
from mrtcurate.pipeline.spill import decoded_segment, encoded_segment
from mrtcurate.schemas import Candidate, Message

CANDIDATES = [
    Candidate("p1", "r1", "a prompt", "an answer", 0.5, "src", origins=((0, 0, 3), (1, 2, 7))),
    Candidate("p2", "r2", "café ☕", "naïve \U0001f600 answer", None, "other", multiplicity=3),
    Candidate(
        "p3", "r3", "chat", "reply", -1.0, "src", messages=(Message("user", "hi"), Message("assistant", "hey")),
        feature=(0.25, 1.5),
    ),
]  # fmt: skip


def _vector(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(384).astype(np.float32)


def _same(left, right) -> bool:
    if isinstance(left, np.ndarray):
        return isinstance(right, np.ndarray) and right.dtype == np.float32 and np.array_equal(left, right)
    if isinstance(left, tuple) and isinstance(right, tuple):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right))
    return type(left) is type(right) and left == right


@pytest.mark.parametrize(
    ("coder", "items"),
    [
        (CandidateCoder(), CANDIDATES),
        (MemberCoder(), [(CANDIDATES[0], _vector(0)), (CANDIDATES[1], None), (CANDIDATES[2], _vector(2))]),
        (PromptVectorCoder(), [("p1", _vector(1)), ("p2", _vector(3))]),
        (PlainValuesCoder(), [{"prompt_id": "p", "rank": 0, "reward": None, "messages": [{"role": "user"}]}, ("r", 2)]),
    ],
    ids=["candidates", "members", "prompt-vectors", "plain-values"],
)
def test_items_come_back_whole_from_beam_encoding_and_from_segment_files(coder, items):
    assert coder.is_deterministic()
    for item in items:
        assert _same(coder.decode(coder.encode(item)), item)
        assert coder.encode(item) == coder.encode(coder.decode(coder.encode(item)))
    assert all(_same(back, item) for back, item in zip(decoded_segment(encoded_segment(items, coder), coder), items))


def test_a_decoded_vector_is_writable_and_owns_its_memory():
    (_, vector), *_ = decoded_segment(encoded_segment([(CANDIDATES[0], _vector(0))], MemberCoder()), MemberCoder())
    vector[0] = 1.0  # the selection normalises and edits vectors in place
    assert vector.flags.owndata
