"""Join a message table (one message per row, with its parent's id) into trees, inside the job.

Each message finds its tree's root by pointer doubling: every round, a message still looking asks the
message its pointer names for that message's own pointer, so the distance it covers doubles; `_ROUNDS`
rounds of one CoGroupByKey each reach 2**_ROUNDS levels, whatever the number of trees or their width.
Only ids travel through the rounds; the messages themselves are grouped once, by root, and each tree
is walked like a nested one (ingest/trees.py). A chain that meets an id no row has is missing_parent;
one still looking after the last round (a parent cycle, or a deeper tree) is no_root.

With --tree-id-field (OpenAssistant's exports carry `message_tree_id`) the rows are grouped by tree in
one shuffle and linked by parent id within their group, with no depth limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam

from mrtcurate.ingest.trees import row_tree_units, rows_in_memory
from mrtcurate.schemas import Candidate, Reject, RejectReason, TreeMessage
from mrtcurate.schemas.counts import Count, UnitTally

_ROUNDS = 8
_LOOKING, _ROOT, _ORPHAN = "looking", "root", "orphan"
REJECTS, COUNTS, REASONS = "rejects", "counts", "reasons"


@dataclass
class TreeUnits:
    candidates: beam.PCollection
    rejects: beam.PCollection
    counts: beam.PCollection  # (count name, n)
    reasons: beam.PCollection  # (reason, n)


def _start(message: TreeMessage) -> tuple[str, tuple[str, str]]:
    """(id, (pointer, state)): a root points at itself, found; any other message at its parent."""
    if message.parent_id is None:
        return message.message_id, (message.message_id, _ROOT)
    return message.message_id, (message.parent_id, _LOOKING)


def _asks(keyed_state):
    message_id, (pointer, state) = keyed_state
    if state == _LOOKING:
        yield pointer, message_id


def _answer(joined):
    """At id X: X's own state stays if settled (a looking X is re-emitted where it asked), and every
    message pointing at X takes X's pointer, or learns X's root, or that X does not exist."""
    message_id, grouped = joined
    states = sorted(grouped["state"])
    for pointer, state in states:
        if state != _LOOKING:
            yield message_id, (pointer, state)
    target = states[0] if states else None  # a duplicated id: its first state, as row_tree_units keeps the first row
    for asker in grouped["asks"]:
        if target is None:
            yield asker, (message_id, _ORPHAN)
        else:
            yield asker, target


def _to_root(joined, max_levels: int):
    _message_id, grouped = joined
    states = sorted(grouped["state"])
    for message in grouped["message"]:
        pointer, state = states[0]
        if state == _ROOT:
            yield pointer, message
        elif state == _ORPHAN:
            yield beam.pvalue.TaggedOutput(
                REJECTS,
                _reject(
                    message,
                    RejectReason.MISSING_PARENT,
                    f"its chain of parents reaches '{pointer}', which no row has as its id",
                ),
            )
        else:
            yield beam.pvalue.TaggedOutput(
                REJECTS,
                _reject(
                    message,
                    RejectReason.NO_ROOT,
                    f"no root within {max_levels} levels above it: a parent cycle, or a deeper tree",
                ),
            )


def _reject(message: TreeMessage, reason: RejectReason, detail: str) -> Reject:
    return Reject(
        message.record,
        reason.value,
        f"message '{message.message_id}': {detail}",
        message.source_file,
        message.source_row,
    )


class _WalkTree(beam.DoFn):
    """One tree's rows, keyed by its root's id (linked already), or by its --tree-id-field value (linked here)."""

    def __init__(self, mapping):
        self.mapping = mapping

    def process(self, tree):
        key, messages = tree
        if self.mapping.tree_id:
            units = rows_in_memory(list(messages), self.mapping)
        else:
            units = row_tree_units(list(messages), key, self.mapping)
        walked = UnitTally()
        for unit in units:
            walked.add(unit)
            if isinstance(unit, Reject):
                yield beam.pvalue.TaggedOutput(REJECTS, unit)
            elif isinstance(unit, Candidate):
                yield unit
        for pair in walked.counts(with_context=True):
            yield beam.pvalue.TaggedOutput(COUNTS, pair)
        for pair in walked.reasons.items():
            yield beam.pvalue.TaggedOutput(REASONS, pair)


def _join_rejects_counted(rejects: beam.PCollection):
    return (
        rejects | "CountJoinRejects" >> beam.Map(lambda _: (Count.REJECTED.value, 1)),
        rejects | "JoinRejectReasons" >> beam.Map(lambda reject: (reject.reason, 1)),
    )


class JoinMessageTrees(beam.PTransform):
    def __init__(self, mapping):
        super().__init__()
        self.mapping = mapping

    def expand(self, messages) -> TreeUnits:
        if self.mapping.tree_id:
            return self._group_by_tree_id(messages)
        state = messages | "StartAtParent" >> beam.Map(_start)
        for round_ in range(_ROUNDS):
            asks = state | f"Asks{round_}" >> beam.FlatMap(_asks)
            state = (
                {"state": state, "asks": asks}
                | f"Join{round_}" >> beam.CoGroupByKey()
                | f"Jump{round_}" >> beam.FlatMap(_answer)
            )
        by_id = messages | "KeyById" >> beam.Map(lambda message: (message.message_id, message))
        rooted = (
            {"message": by_id, "state": state}
            | "AttachRoot" >> beam.CoGroupByKey()
            | "ToRoot" >> beam.FlatMap(_to_root, 2**_ROUNDS).with_outputs(REJECTS, main="rooted")
        )
        walked = (
            rooted.rooted
            | "GroupTree" >> beam.GroupByKey()
            | "WalkTree"
            >> beam.ParDo(_WalkTree(self.mapping))
            .with_output_types(Candidate)
            .with_outputs(REJECTS, COUNTS, REASONS, main="candidates")
        )
        join_counts, join_reasons = _join_rejects_counted(rooted[REJECTS])
        return TreeUnits(
            walked.candidates,
            (rooted[REJECTS], walked[REJECTS]) | "TreeRejects" >> beam.Flatten(),
            (walked[COUNTS], join_counts) | "TreeCounts" >> beam.Flatten(),
            (walked[REASONS], join_reasons) | "TreeReasons" >> beam.Flatten(),
        )

    def _group_by_tree_id(self, messages) -> TreeUnits:
        walked = (
            messages
            | "KeyByTreeId" >> beam.Map(lambda message: (message.tree_id, message))
            | "GroupTree" >> beam.GroupByKey()
            | "WalkTree"
            >> beam.ParDo(_WalkTree(self.mapping))
            .with_output_types(Candidate)
            .with_outputs(REJECTS, COUNTS, REASONS, main="candidates")
        )
        return TreeUnits(walked.candidates, walked[REJECTS], walked[COUNTS], walked[REASONS])
