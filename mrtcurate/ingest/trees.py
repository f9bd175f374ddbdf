"""The tree layout: OpenAssistant-style message trees, nested (`replies` lists under a root message) or
one message per row (joined by parent id in the job: pipeline/trees.py); both walk the same way.

Every assistant reply is a candidate for the conversation above it, which is its prompt (rendered, and
as chat `messages`); replies to one user turn share that history, so each user turn is one prompt
however many replies it has. Accounting: every message is a candidate, a reject, or a valid user or
system turn counted as context (ContextTurns). A message that is deleted, failed review, or is malformed
takes the replies below it along, each a reject naming why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from mrtcurate.ids import stable_id
from mrtcurate.ingest import paths
from mrtcurate.ingest.fields import (
    SHAREGPT_KEYS,
    Invalid,
    candidate,
    chat_identity,
    prompt_id,
    render_turns,
    reward,
    turn,
)
from mrtcurate.ingest.formats import RawRecord
from mrtcurate.schemas import Candidate, ContextTurns, Message, Reject, RejectReason, TreeMessage

# OpenAssistant's moderation marks; --keep-deleted keeps such messages.
DELETED, REVIEW_RESULT = "deleted", "review_result"


@dataclass
class Node:
    fields: object
    where: str  # how a reject names the message: prompt.replies[0].replies[2], or its id
    children: list[Node] = field(default_factory=list)
    origin: TreeMessage | None = None  # the row it came from, one message per row


def nested_tree_units(fields: dict, mapping, source: str, reject: Callable[[Invalid, str], Reject]) -> Iterator:
    root = paths.parse(mapping.prompt).get(fields)
    if root is paths.MISSING or root is None:
        raise Invalid(RejectReason.MISSING_PROMPT, paths.parse(mapping.prompt).missing_detail(fields))
    yield from walk(
        _nested(root, mapping.prompt, mapping.replies),
        mapping,
        source,
        lambda node, invalid: reject(invalid, node.where),
    )


def _nested(message: object, where: str, replies_key: str) -> Node:
    replies = message.get(replies_key) if isinstance(message, dict) else None
    children = replies if isinstance(replies, list) else []
    return Node(
        message,
        where,
        [_nested(child, f"{where}.{replies_key}[{index}]", replies_key) for index, child in enumerate(children)],
    )


def message_row(record: RawRecord, mapping, source: str, source_file: str) -> TreeMessage:
    """One row of a message table, checked for what the join needs: its id and its parent's."""
    fields = record.fields
    message_id = prompt_id(paths.value(fields, mapping.message_id), mapping.message_id)
    parent = paths.value(fields, mapping.parent)
    parent_id = None if parent is None or parent == "" else prompt_id(parent, mapping.parent)
    tree_id = prompt_id(paths.value(fields, mapping.tree_id), mapping.tree_id) if mapping.tree_id else None
    kept = {
        key: fields[key]
        for key in (mapping.role_key, mapping.text_key, *SHAREGPT_KEYS, DELETED, REVIEW_RESULT)
        if key in fields
    }
    if mapping.reward:
        kept[mapping.reward] = paths.value(fields, mapping.reward)
    return TreeMessage(message_id, parent_id, tree_id, kept, source, record.text, source_file, record.row)


def row_tree_units(messages: list[TreeMessage], root_id: str, mapping) -> Iterator:
    """The units of one tree of rows: later rows reusing an id are rejects, the rest are linked by parent."""
    nodes: dict[str, Node] = {}
    for message in sorted(messages, key=lambda m: (m.source_file, m.source_row or 0)):
        if message.message_id in nodes:
            yield _row_reject(
                message,
                RejectReason.DUPLICATE_MESSAGE_ID,
                f"message id '{message.message_id}' is already taken by an earlier row",
            )
            continue
        nodes[message.message_id] = Node(message.fields, f"message '{message.message_id}'", origin=message)
    for node in nodes.values():
        if node.origin.parent_id is not None and node.origin.message_id != root_id:
            nodes[node.origin.parent_id].children.append(node)
    root = nodes[root_id]
    yield from walk(
        root,
        mapping,
        root.origin.source,
        lambda node, invalid: _row_reject(node.origin, invalid.reason, invalid.detail),
    )


def rows_in_memory(messages: list[TreeMessage], mapping) -> Iterator:
    """The job's join by parent id (pipeline/trees.py) for rows that fit in memory (`mrt inspect`'s
    sample, or the rows of one --tree-id-field group): each row follows its parents to its root; the
    first row with an id is the one kept."""
    messages = sorted(messages, key=lambda m: (m.source_file, m.source_row or 0))
    by_id: dict[str, TreeMessage] = {}
    for message in messages:
        by_id.setdefault(message.message_id, message)
    trees: dict[str, list[TreeMessage]] = {}
    for message in messages:
        current, seen = message, {message.message_id}
        while current.parent_id is not None:
            if current.parent_id not in by_id:
                yield _row_reject(
                    message,
                    RejectReason.MISSING_PARENT,
                    f"message '{message.message_id}': its chain of parents reaches '{current.parent_id}', which no row has as its id",
                )
                break
            if current.parent_id in seen:
                yield _row_reject(
                    message, RejectReason.NO_ROOT, f"message '{message.message_id}': its parents form a cycle"
                )
                break
            current = by_id[current.parent_id]
            seen.add(current.message_id)
        else:
            trees.setdefault(current.message_id, []).append(message)
    for root_id, rows in trees.items():
        yield from row_tree_units(rows, root_id, mapping)


def _row_reject(message: TreeMessage, reason: RejectReason, detail: str) -> Reject:
    return Reject(message.record, reason.value, detail, message.source_file, message.source_row)


def walk(
    root: Node, mapping, source: str, reject: Callable[[Node, Invalid], Reject]
) -> Iterator[Candidate | Reject | ContextTurns]:
    # Iterative: a long conversation must not meet Python's recursion limit.
    context = 0
    reward_path = paths.parse(mapping.reward) if mapping.reward else None
    stack: list[tuple[Node, tuple[Message, ...], Invalid | None]] = [(root, (), None)]
    while stack:
        node, history, inherited = stack.pop()
        try:
            if inherited is not None:
                raise inherited
            skipped = None if mapping.keep_deleted else _moderated(node.fields)
            if skipped is not None:
                raise skipped
            message = turn(node.fields, mapping.role_key, mapping.text_key, node.where)
        except Invalid as invalid:
            yield reject(node, invalid)
            below = (
                invalid if inherited is not None else Invalid(invalid.reason, f"below {node.where}: {invalid.detail}")
            )
            stack.extend((child, history, below) for child in reversed(node.children))
            continue
        if message.role == "assistant":
            try:
                yield _reply(history, message, node, reward_path, mapping.reward_sign, source)
            except Invalid as invalid:
                yield reject(node, invalid)
        else:
            context += 1
        stack.extend((child, (*history, message), None) for child in reversed(node.children))
    yield ContextTurns(context)


def _reply(
    history: tuple[Message, ...], message: Message, node: Node, reward_path, sign: float, source: str
) -> Candidate:
    if not any(turn.content for turn in history):
        raise Invalid(RejectReason.EMPTY_PROMPT, "no non-blank turn above this reply")
    if not message.content:
        raise Invalid(RejectReason.EMPTY_RESPONSE, "the reply is blank")
    value = reward_path.get(node.fields) if reward_path is not None else None
    score = None if value is paths.MISSING else reward(value, sign)
    return candidate(
        stable_id(chat_identity(history)), render_turns(history), message.content, score, source, (*history, message)
    )


def _moderated(fields: object) -> Invalid | None:
    if not isinstance(fields, dict):
        return None
    if fields.get(DELETED) is True:
        return Invalid(RejectReason.DELETED_MESSAGE, "the message is marked deleted")
    if fields.get(REVIEW_RESULT) is False:
        return Invalid(RejectReason.FAILED_REVIEW, "the message failed review (review_result false)")
    return None
