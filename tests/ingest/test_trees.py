from mrtcurate.ingest.formats import RawRecord
from mrtcurate.ingest.layouts import FieldMapping, to_units
from mrtcurate.ingest.trees import rows_in_memory
from mrtcurate.schemas import Candidate, ContextTurns, Reject

TREE_MAPPING = FieldMapping(layout="tree", text_key="text", reward="rank", reward_order="lower")
ROWS_MAPPING = FieldMapping(
    layout="tree", text_key="text", reward="rank", reward_order="lower", message_id="message_id", parent="parent_id"
)


def message(mid, role, text, rank=None, replies=(), **marks):
    return {"message_id": mid, "role": role, "text": text, "rank": rank, "replies": list(replies), **marks}


TREE = {
    "prompt": message(
        "p1",
        "prompter",
        "Name a fish.",
        replies=[
            message(
                "a1",
                "assistant",
                "Cod.",
                1,
                replies=[message("p2", "prompter", "Another?", replies=[message("a3", "assistant", "Hake.", 0)])],
            ),
            message("a2", "assistant", "Salmon.", 0),
            message(
                "a4",
                "assistant",
                "Spam.",
                2,
                deleted=True,
                replies=[message("p3", "prompter", "Eh?", replies=[message("a5", "assistant", "Sorry.", 0)])],
            ),
        ],
    )
}


def tree_units(tree, mapping=TREE_MAPPING):
    return list(to_units(RawRecord(tree, "{}", 1), mapping, "trees.jsonl"))


def test_each_user_turn_is_one_prompt_with_the_conversation_above_it():
    units = tree_units(TREE)
    candidates = [u for u in units if isinstance(u, Candidate)]
    assert [c.completion for c in candidates] == ["Cod.", "Hake.", "Salmon."]
    cod, hake, salmon = candidates
    assert cod.prompt_id == salmon.prompt_id != hake.prompt_id
    assert [(m.role, m.content) for m in hake.messages] == [
        ("user", "Name a fish."),
        ("assistant", "Cod."),
        ("user", "Another?"),
        ("assistant", "Hake."),
    ]
    assert hake.prompt == "user: Name a fish.\n\nassistant: Cod.\n\nuser: Another?"
    assert (cod.reward, salmon.reward) == (-1.0, -0.0)  # rank, lower is better


def test_a_deleted_message_takes_the_replies_below_it_along_and_every_message_is_accounted_for():
    units = tree_units(TREE)
    rejects = [u for u in units if isinstance(u, Reject)]
    assert [(r.reason, r.detail.split(":")[0]) for r in rejects] == [
        ("deleted_message", "prompt.replies[2]"),
        ("deleted_message", "prompt.replies[2].replies[0]"),
        ("deleted_message", "prompt.replies[2].replies[0].replies[0]"),
    ]
    context = sum(u.count for u in units if isinstance(u, ContextTurns))
    assert context == 2 and len(units) - 1 + context == 8  # 8 messages: 3 candidates, 3 rejects, 2 context
    kept = tree_units(TREE, FieldMapping(**{**TREE_MAPPING.__dict__, "keep_deleted": True}))
    assert sum(isinstance(u, Candidate) for u in kept) == 5


def test_a_failed_review_and_a_missing_root_are_rejects():
    failed = tree_units(
        {"prompt": message("p", "prompter", "Q", replies=[message("a", "assistant", "A", 0, review_result=False)])}
    )
    assert [u.reason for u in failed if isinstance(u, Reject)] == ["failed_review"]
    assert [u.reason for u in tree_units({"message_tree_id": "t"})] == ["missing_prompt"]


def _rows(tree, parent=None):
    node = {k: v for k, v in tree.items() if k != "replies"} | {"parent_id": parent}
    return [node] + [row for child in tree["replies"] for row in _rows(child, tree["message_id"])]


def test_the_message_table_gives_what_the_nested_tree_gives():
    rows = _rows(TREE["prompt"])
    messages = [
        unit
        for row, fields in enumerate(rows, 1)
        for unit in to_units(RawRecord(fields, "{}", row), ROWS_MAPPING, "rows.jsonl")
    ]
    units = list(rows_in_memory(messages, ROWS_MAPPING))
    nested = [u for u in tree_units(TREE) if isinstance(u, Candidate)]
    assert sorted(
        (c.prompt_id, c.completion, c.reward, c.messages) for c in units if isinstance(c, Candidate)
    ) == sorted((c.prompt_id, c.completion, c.reward, c.messages) for c in nested)


def test_orphans_duplicates_and_cycles_in_the_message_table_are_rejects():
    rows = [
        {"message_id": "r", "parent_id": None, "role": "prompter", "text": "Q"},
        {"message_id": "a", "parent_id": "r", "role": "assistant", "text": "A"},
        {"message_id": "a", "parent_id": "r", "role": "assistant", "text": "A again"},
        {"message_id": "o", "parent_id": "gone", "role": "assistant", "text": "orphan"},
        {"message_id": "x", "parent_id": "y", "role": "prompter", "text": "x"},
        {"message_id": "y", "parent_id": "x", "role": "assistant", "text": "y"},
    ]
    messages = [
        unit
        for row, fields in enumerate(rows, 1)
        for unit in to_units(RawRecord(fields, "{}", row), ROWS_MAPPING, "rows.jsonl")
    ]
    units = list(rows_in_memory(messages, ROWS_MAPPING))
    reasons = sorted(u.reason for u in units if isinstance(u, Reject))
    assert reasons == ["duplicate_message_id", "missing_parent", "no_root", "no_root"]
    assert [u.completion for u in units if isinstance(u, Candidate)] == ["A"]
