import dataclasses
import functools
import itertools
import random

import pytest

from mrtcurate.schemas import Candidate, Message
from mrtcurate.schemas.records import RecordLocator, candidate_of, merged_copies


def copy(text: str, reward, origin) -> Candidate:
    return Candidate("p", "r", "prompt", text, reward, "a.jsonl", origins=(origin,))


def test_copies_merge_the_same_all_at_once_and_pair_by_pair_in_any_order():
    copies = [
        copy("x ", 0.5, (0, 0, 9)),
        copy(" x", None, (1, 0, 2)),
        copy("x", 0.7, (0, 2, 1)),
        copy("x", 0.1, (0, 0, 3)),
    ]
    expected = merged_copies(copies)
    assert expected.completion == " x" and expected.reward == 0.7 and expected.multiplicity == 4
    assert expected.origins == ((0, 0, 3), (0, 0, 9), (0, 2, 1), (1, 0, 2))
    for order in itertools.permutations(copies):
        assert merged_copies(list(order)) == expected
        assert functools.reduce(Candidate.merged_with, order) == expected


def test_a_candidate_rejected_names_each_of_its_records():
    many = merged_copies(
        [copy("x", None, (0, part, row)) for part, row in random.Random(1).sample([(0, 5), (1, 2), (1, 7)], 3)]
    )
    locator = RecordLocator(("in/a.jsonl",), {("in/a.jsonl", 1): 100})
    rejects = many.rejected("boilerplate_response", "why", locator)
    assert [(reject.source_file, reject.source_row) for reject in rejects] == [
        ("in/a.jsonl", 5),
        ("in/a.jsonl", 102),
        ("in/a.jsonl", 107),
    ]
    # A candidate whose records are not known (built by hand) names its source label, once per record.
    unknown = Candidate("p", "r", "prompt", "x", None, "label", multiplicity=2)
    assert [(r.source_file, r.source_row) for r in unknown.rejected("boilerplate_response", "why", locator)] == [
        ("label", None)
    ] * 2


def test_candidate_of_builds_what_the_constructor_builds():
    values = ("p", "r", "prompt", "answer", 1.5, "src", (Message("user", "hi"),), 2, (0.5,), ((0, 1, 2),))
    built = candidate_of(values)
    assert built == Candidate(*values) and hash(built) == hash(Candidate(*values))
    assert dataclasses.replace(built, multiplicity=3) == Candidate(*values[:7], 3, *values[8:])
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.multiplicity = 4  # still frozen
    with pytest.raises(ValueError):
        candidate_of(values[:-1])  # every field, or an error: never a candidate missing one
