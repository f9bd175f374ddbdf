"""The message-table join on the real local runner: what it builds equals the in-memory join, and the
chains it cannot follow (deeper than its rounds reach, cycles, missing parents) become rejects."""

import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import apache_beam as beam

from mrtcurate.ingest.formats import RawRecord
from mrtcurate.ingest.layouts import FieldMapping, to_units
from mrtcurate.ingest.trees import rows_in_memory
from mrtcurate.pipeline.launch import new_pipeline
from mrtcurate.pipeline.trees import JoinMessageTrees
from mrtcurate.schemas import Candidate
from tests.helpers import collect_to, collected

MAPPING = FieldMapping(
    layout="tree", text_key="text", reward="rank", reward_order="lower", message_id="message_id", parent="parent_id"
)


def chain(depth: int, tree: str) -> list[dict]:
    """user, assistant, user, ... `depth` messages, each replying to the one before."""
    return [
        {
            "message_id": f"{tree}{i}",
            "parent_id": f"{tree}{i - 1}" if i else None,
            "role": "assistant" if i % 2 else "prompter",
            "text": f"turn {i}",
            "rank": 0,
        }
        for i in range(depth)
    ]


ROWS = [
    *chain(300, "deep"),
    *chain(5, "short"),
    {
        "message_id": "short9",
        "parent_id": "short0",
        "role": "assistant",
        "text": "another reply to the first turn",
        "rank": 1,
    },
    {"message_id": "o", "parent_id": "gone", "role": "assistant", "text": "orphan", "rank": 0},
    {"message_id": "c1", "parent_id": "c2", "role": "prompter", "text": "cycle"},
    {"message_id": "c2", "parent_id": "c1", "role": "assistant", "text": "cycle"},
    {
        "message_id": "short1",
        "parent_id": "short0",
        "role": "assistant",
        "text": "a second row with a taken id",
        "rank": 0,
    },
]


BY_TREE_ID = replace(MAPPING, tree_id="tree")


def tree_of(message_id: str) -> str:
    return message_id.rstrip("0123456789") or message_id


def messages(mapping=MAPPING):
    rows = [{**fields, "tree": tree_of(fields["message_id"])} for fields in ROWS]
    return [
        unit
        for row, fields in enumerate(rows, 1)
        for unit in to_units(RawRecord(fields, str(row), row), mapping, "rows.jsonl")
    ]


def run_join(items, mapping=MAPPING):
    with tempfile.TemporaryDirectory() as scratch:
        with new_pipeline([]) as pipeline:
            trees = pipeline | beam.Create(items) | JoinMessageTrees(mapping)
            collect_to(
                trees.candidates
                | "CandidateRows" >> beam.Map(lambda c: [c.prompt_id, c.completion, c.reward, len(c.messages)]),
                Path(scratch) / "c",
                "C",
            )
            collect_to(trees.rejects | "RejectRows" >> beam.Map(asdict), Path(scratch) / "r", "R")
            collect_to(trees.counts | beam.CombinePerKey(sum), Path(scratch) / "n", "N")
        return (
            collected(Path(scratch) / "c"),
            collected(Path(scratch) / "r"),
            dict(map(tuple, collected(Path(scratch) / "n"))),
        )


def test_the_join_builds_the_trees_the_in_memory_join_builds_and_rejects_what_it_cannot_root():
    candidates, rejects, counts = run_join(messages())
    reasons = {}
    for reject in rejects:
        reasons.setdefault(reject["reason"], []).append(reject["detail"].split("'")[1])
    # Eight rounds of pointer doubling reach 256 levels: the deeper part of the 300-turn chain has no root.
    assert sorted(reasons["no_root"]) == sorted([f"deep{i}" for i in range(256, 300)] + ["c1", "c2"])
    assert reasons["missing_parent"] == ["o"] and len(reasons["duplicate_message_id"]) == 1
    # The in-memory join follows chains of any depth; the job's agrees on every message within 256 levels.
    in_memory = [u for u in rows_in_memory(messages(), MAPPING) if isinstance(u, Candidate) and len(u.messages) <= 256]
    assert sorted(candidates) == sorted([u.prompt_id, u.completion, u.reward, len(u.messages)] for u in in_memory)
    assert len(candidates) == 3 + 128  # the short tree's replies, and one reply per two deep turns within reach
    # Every row is a candidate, a reject, or context.
    assert counts["parsed_candidates"] + counts["rejected"] + counts["context_messages"] == len(ROWS)
    assert (counts["rejected"], counts["parsed_candidates"], counts["context_messages"]) == (
        len(rejects),
        len(candidates),
        3 + 128,
    )


def test_grouping_by_tree_id_links_within_each_tree_with_no_depth_limit():
    candidates, rejects, counts = run_join(messages(BY_TREE_ID), BY_TREE_ID)
    in_memory = [u for u in rows_in_memory(messages(BY_TREE_ID), BY_TREE_ID) if isinstance(u, Candidate)]
    assert sorted(candidates) == sorted([u.prompt_id, u.completion, u.reward, len(u.messages)] for u in in_memory)
    assert len(candidates) == 3 + 150  # every reply of the 300-turn chain
    assert sorted(reject["reason"] for reject in rejects) == [
        "duplicate_message_id",
        "missing_parent",
        "no_root",
        "no_root",
    ]
    assert counts["parsed_candidates"] + counts["rejected"] + counts["context_messages"] == len(ROWS)
