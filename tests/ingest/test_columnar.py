"""The read by column against its oracle, the per-record parser: the same units for every record, fuzzed."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mrtcurate.ingest import columnar
from mrtcurate.ingest.columnar import BLOCK_RECORDS, block_units, reads_by_column
from mrtcurate.ingest.files import open_binary
from mrtcurate.ingest.formats import RawRecord, iter_records
from mrtcurate.ingest.layouts import FieldMapping, to_units
from tests.conftest import shared_corpus
from tests.ingest.test_fuzz import RECORDS

# Texts the columns take and the ones they must leave to the parser, side by side: ASCII with every kind of
# whitespace (Python's \x1c-\x1f among them), blank ones, transcripts, and a few non-ASCII spellings.
ASCII_TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=12)
EDGES = st.sampled_from(
    (
        "",
        "  ",
        "\x1c",
        "a\x1fb",
        " \t\x0b\x0cword\r\n",
        "Human: hi\n\nAssistant:",
        "Human: \n\nAssistant:",
        "Human: hi",
        "caf\u00e9",
        "cafe\u0301",
        "\ud800",
        "\u00a0x\u3000",
    )
)
TEXTS = ASCII_TEXT | ASCII_TEXT | EDGES
REWARDS = st.none() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.booleans() | st.just("0.5")
IDS = st.none() | st.just("") | ASCII_TEXT | st.integers() | st.booleans() | st.just("\u00e9")
PLAIN_RECORDS = st.fixed_dictionaries(
    {"prompt": TEXTS, "response": TEXTS},
    optional={"score": REWARDS, "pid": IDS, "src": IDS | TEXTS, "prompt.x": TEXTS},
)
# A grouped record's responses and rewards: lists (of odd lengths too), or what a list should have been.
GROUPED_RECORDS = st.fixed_dictionaries(
    {"prompt": TEXTS, "response": st.lists(TEXTS | st.none(), max_size=4) | TEXTS},
    optional={"score": st.lists(REWARDS | st.just(""), max_size=4) | REWARDS, "pid": IDS, "src": IDS},
)
MAPPINGS = st.builds(
    FieldMapping,
    layout=st.sampled_from(("flat", "grouped")),
    reward=st.sampled_from((None, "score")),
    id=st.sampled_from((None, "pid")),
    source=st.sampled_from((None, "src")),
    reward_order=st.sampled_from(("higher", "lower")),
)


def units_both_ways(records: list[dict], mapping: FieldMapping):
    raw = [RawRecord(fields, json.dumps(fields), row) for row, fields in enumerate(records, start=1)]
    return block_units(raw, mapping, "dir/f.jsonl"), [list(to_units(record, mapping, "dir/f.jsonl")) for record in raw]


@given(st.lists(PLAIN_RECORDS | GROUPED_RECORDS, max_size=20), MAPPINGS)
def test_plain_records_give_the_parsers_units(records, mapping):
    by_column, by_record = units_both_ways(records, mapping)
    assert by_column == by_record


@given(st.lists(RECORDS, max_size=8), MAPPINGS)
def test_arbitrary_records_give_the_parsers_units(records, mapping):
    # Through JSON text, as a file delivers them (NaN, Infinity, lone surrogates).
    records = [json.loads(json.dumps(record)) for record in records]
    by_column, by_record = units_both_ways(records, mapping)
    assert by_column == by_record


def test_the_columns_take_what_they_can_and_only_the_flat_layout_of_plain_keys(monkeypatch):
    flat = [{"prompt": f" question {i} ", "response": f"answer\t{i}\n", "score": i} for i in range(50)]
    grouped = [{"prompt": f"q{i}", "response": ["a", " b ", f"c {i}"], "score": [1, None, 2.5]} for i in range(50)]
    cases = [
        (flat, FieldMapping(layout="flat", reward="score")),
        (grouped, FieldMapping(layout="grouped", reward="score")),
    ]
    expected = [units_both_ways(records, mapping)[1] for records, mapping in cases]

    def no_parser(*_):
        raise AssertionError("a plain record went to the per-record parser")

    monkeypatch.setattr(columnar, "to_units", no_parser)
    for (records, mapping), by_record in zip(cases, expected):
        raw = [RawRecord(fields, json.dumps(fields), row) for row, fields in enumerate(records, start=1)]
        assert block_units(raw, mapping, "dir/f.jsonl") == by_record
    assert sum(len(units) for units in expected[1]) == 150
    assert reads_by_column(FieldMapping(layout="flat", reward="score", id="pid", source="src"))
    assert reads_by_column(FieldMapping(layout="grouped", reward="score"))
    assert not reads_by_column(FieldMapping(layout="grouped", response="completions[*].text"))
    assert not reads_by_column(FieldMapping(layout="pairs"))
    assert not reads_by_column(FieldMapping(layout="flat", response="answer.text"))
    assert not reads_by_column(FieldMapping(layout="flat", prompt_template="Q: {question}"))
    assert not reads_by_column(FieldMapping(layout="flat", finish_reason="finish"))


@pytest.mark.parametrize(
    "name", ["instructgpt_samples", "gsm8k_model_solutions", "vicuna80_fastchat", "hh_rlhf_harmless_test", "flask"]
)
def test_real_corpora_give_the_same_prompts_and_pools_by_column(name):
    path = shared_corpus(name)
    mapping = FieldMapping(layout="flat", reward="score", source="model")
    with open_binary(str(path)) as stream:
        records = [
            record for record in iter_records(stream, "jsonl", str(path), 100_000) if isinstance(record, RawRecord)
        ]
    by_column = [
        unit
        for start in range(0, len(records), BLOCK_RECORDS)
        for units in block_units(records[start : start + BLOCK_RECORDS], mapping, str(path))
        for unit in units
    ]
    by_record = [unit for record in records for unit in to_units(record, mapping, str(path))]
    assert by_column == by_record and len(by_record) >= len(records)
