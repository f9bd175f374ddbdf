"""Property-based fuzzing of parsing and layouts: whatever the bytes, every record becomes candidates or
rejects with a known reason, nothing raises, nothing is lost, and everything kept can be written as UTF-8.

The example budget is the `ci` profile (tests/conftest.py); `--hypothesis-profile=thorough` runs far more.
"""

import csv
import gzip
import io
import json
import zlib

from hypothesis import given
from hypothesis import strategies as st

from mrtcurate.ingest.formats import RawRecord, iter_records
from mrtcurate.ingest.layouts import LAYOUTS, FieldMapping, to_units
from mrtcurate.schemas import Candidate, ContextTurns, Reject, RejectReason

KNOWN_REASONS = {reason.value for reason in RejectReason}
FIELDS = ("prompt", "response", "score", "messages", "chosen", "rejected", "pid", "src", "f")
# Every code point, lone surrogates included (JSON's \ud800 escapes decode to them), and the texts that broke
# parsing before, drawn often: Hypothesis rarely reaches a surrogate on its own.
TRICKY = st.sampled_from(
    (
        "\ud800",
        "x\udc00y",
        "\udfff",
        "",
        " \n\t",
        "\ufeff",
        "\x00",
        "\r",
        "NaN",
        "1e999",
        "0",
        "1_000",
        "\u0661\u0662",
        "true",
        "0x10",
        "\u00bd",  # issue 20: spellings float() takes that are no reward
    )
)
ANY_TEXT = TRICKY | st.text(alphabet=st.characters(exclude_categories=()), max_size=12)
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | ANY_TEXT
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(ANY_TEXT | st.sampled_from(("role", "content")), children, max_size=4)
    ),
    max_leaves=12,
)
PLAIN_TEXT = st.text(alphabet="ab \n", min_size=1, max_size=6)
TEXTS = TRICKY | PLAIN_TEXT | ANY_TEXT
TURN = st.fixed_dictionaries(
    {"role": st.sampled_from(("user", "assistant", "system")) | TEXTS, "content": TEXTS | JSON_SCALARS}
)
# Mostly well-formed records (each field a text, a list of texts or turns) with arbitrary JSON anywhere, so
# that bad values reach every layout's deeper checks instead of failing at the first missing field.
FIELD_VALUES = TEXTS | TEXTS | st.lists(TEXTS, max_size=4) | st.lists(TURN, min_size=1, max_size=4) | JSON_VALUES
RECORDS = st.fixed_dictionaries({}, optional={name: FIELD_VALUES for name in FIELDS}).flatmap(
    lambda record: st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=2).map(lambda extra: {**extra, **record})
)
MAPPINGS = st.builds(
    FieldMapping,
    layout=st.sampled_from(LAYOUTS),
    reward=st.sampled_from((None, "score")),
    id=st.sampled_from((None, "pid")),
    source=st.sampled_from((None, "src")),
    feature=st.sampled_from((None, "f")),
    feature_dim=st.sampled_from((None, 2)),
)


def assert_writable(unit):
    """Every string that reaches an output column must be valid UTF-8 (Parquet, ids, hashes)."""
    if isinstance(unit, ContextTurns):
        assert unit.count >= 0
        return
    if isinstance(unit, Reject):
        assert unit.reason in KNOWN_REASONS
        strings = [unit.record, unit.detail, unit.source_file]
    else:
        assert isinstance(unit, Candidate)
        strings = [unit.prompt_id, unit.response_id, unit.prompt, unit.completion, unit.source]
        strings += [part for turn in unit.messages or () for part in (turn.role, turn.content)]
        assert unit.completion.strip() and unit.prompt.strip()
    for text in strings:
        text.encode("utf-8")


def parse(data: bytes, fmt: str, path: str, max_chars: int = 10_000) -> list:
    return list(iter_records(io.BytesIO(data), fmt, path, max_chars))


@given(st.lists(st.binary(max_size=40), max_size=12))
def test_arbitrary_byte_lines_are_records_or_rejects_one_each(lines):
    lines = [line.replace(b"\n", b" ") for line in lines]
    items = parse(b"\n".join(lines), "jsonl", "f.jsonl")
    # A lone \r is the terminator's remainder and a leading BOM belongs to no line: neither holds a record.
    expected = [
        row
        for row, line in enumerate(lines, start=1)
        if (line.removeprefix(b"\xef\xbb\xbf") if row == 1 else line).removesuffix(b"\r").strip()
    ]
    assert [getattr(item, "row", None) or item.source_row for item in items] == expected
    for item in items:
        assert isinstance(item, RawRecord) or item.reason in KNOWN_REASONS


@given(RECORDS, MAPPINGS)
def test_arbitrary_json_at_every_field_gives_candidates_or_rejects(fields, mapping):
    # Through real JSON text, so NaN, Infinity and \ud800 escapes arrive as a parser delivers them.
    line = json.dumps(fields).encode()
    [record] = parse(line, "jsonl", "f.jsonl", max_chars=len(line) + 1)
    if isinstance(record, Reject):
        assert record.reason in KNOWN_REASONS
        return
    units = list(to_units(record, mapping, "f.jsonl"))
    # A tree whose messages are all context yields only its ContextTurns count, which the manifest reports.
    assert units, "a record must yield at least one unit, or it is lost from the accounting"
    for unit in units:
        assert_writable(unit)


@given(
    st.lists(st.lists(st.text(max_size=8), min_size=1, max_size=4), max_size=10),
    st.lists(st.binary(max_size=20), max_size=3),
)
def test_csv_rows_each_one_unit(rows, garbage):
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # \r\n terminators: a \r inside a field is then quoted
    writer.writerow(["prompt", "response", "score"])
    writer.writerows(rows)
    data = buffer.getvalue().encode("utf-8")
    items = parse(data, "csv", "f.csv")
    non_blank = [row for row in rows if any(value.strip() for value in row)]
    assert len(items) == len(non_blank)
    mapping = FieldMapping(layout="flat", reward="score")
    for item in items:
        for unit in to_units(item, mapping, "f.csv") if isinstance(item, RawRecord) else [item]:
            assert_writable(unit)
    # Arbitrary bytes after well-formed rows: never raises, every unit has a known reason.
    for item in parse(data + b"\n".join(garbage), "csv", "f.csv"):
        assert isinstance(item, RawRecord) or item.reason in KNOWN_REASONS


LINES = st.lists(st.dictionaries(st.sampled_from(FIELDS), st.text(max_size=30), min_size=1), min_size=1, max_size=30)


@given(LINES, st.floats(min_value=0.0, max_value=1.0))
def test_truncated_gzip_keeps_exactly_the_complete_lines_before_the_cut(rows, fraction):
    plain = b"".join(json.dumps(row).encode() + b"\n" for row in rows)
    whole = gzip.compress(plain)
    cut = whole[: int(len(whole) * fraction)]
    items = parse(cut, "jsonl", "f.jsonl.gz")
    records = [item for item in items if isinstance(item, RawRecord)]
    recovered = zlib.decompressobj(wbits=31).decompress(cut) if cut else b""
    assert [record.fields for record in records] == [
        json.loads(line) for line in recovered.split(b"\n")[:-1] if line.strip()
    ]
    rejects = [item for item in items if isinstance(item, Reject)]
    if len(cut) == len(whole) or not cut:
        assert not rejects
    else:
        assert [reject.reason for reject in rejects] == ["truncated_gzip"] and items[-1] is rejects[0]


@given(LINES, st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_corrupt_gzip_never_raises_and_marks_the_break_once_at_the_end(rows, position, flip):
    whole = bytearray(gzip.compress(b"".join(json.dumps(row).encode() + b"\n" for row in rows)))
    whole[position % len(whole)] ^= flip
    items = parse(bytes(whole), "jsonl", "f.jsonl.gz")
    stream_rejects = [
        index
        for index, item in enumerate(items)
        if isinstance(item, Reject) and item.reason in ("truncated_gzip", "not_gzip")
    ]
    assert len(stream_rejects) <= 1 and (not stream_rejects or stream_rejects[0] == len(items) - 1)
    for item in items:
        assert isinstance(item, RawRecord) or item.reason in KNOWN_REASONS


# Issue 20's input classes, so that they cannot come back.
ODD_REWARDS = st.sampled_from(
    (True, False, "1_000", "\u0661\u0662", "\u0968", "0x10", "\u00bd", "1e999", "nan", "inf", " ", "1 2")
) | st.integers(min_value=2**1030, max_value=2**1100)


@given(ODD_REWARDS)
def test_only_json_numbers_and_plain_decimal_strings_are_rewards(score):
    mapping = FieldMapping(layout="flat", reward="score")
    [record] = parse(json.dumps({"prompt": "p", "response": "r", "score": score}).encode(), "jsonl", "f.jsonl")
    units = list(to_units(record, mapping, "f.jsonl"))
    assert [unit.reason for unit in units] == [RejectReason.INVALID_REWARD.value]


@given(RECORDS, st.integers(min_value=4301, max_value=6000), st.sampled_from(("head", "tail")))
def test_an_integer_past_the_digit_limit_anywhere_is_one_reject(fields, digits, where):
    body = json.dumps(fields)
    huge = '"big": ' + "7" * digits
    line = (
        ("{" + huge + (", " + body[1:] if len(body) > 2 else "}"))
        if where == "head"
        else (body[:-1] + (", " if len(body) > 2 else "") + huge + "}")
    )
    [record] = parse(line.encode(), "jsonl", "f.jsonl", max_chars=len(line) + 1)
    assert isinstance(record, Reject) and record.reason == RejectReason.INVALID_JSON.value


NAME_CHARACTERS = st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="/")


@given(
    st.text(NAME_CHARACTERS, min_size=1, max_size=12).filter(lambda name: name not in (".", "..")),
    st.lists(st.text(alphabet="abc", min_size=1, max_size=3), min_size=1, max_size=3, unique=True),
)
def test_a_glob_matches_file_names_of_every_printable_character_and_a_repeated_csv_header_is_refused(name, header):
    import os
    import tempfile

    import pytest

    from mrtcurate.errors import UserError
    from mrtcurate.ingest.probe import resolve_mapping
    from mrtcurate.schemas.config import IngestSettings

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name + ".jsonl")
        with open(path, "w", encoding="utf-8") as sink:
            sink.write('{"prompt": "p", "response": "r"}\n')
        files, _, _ = resolve_mapping(IngestSettings(input=[os.path.join(folder, "*.jsonl")]), fingerprint=False)
        assert [file.path for file in files] == [path]
        table = os.path.join(folder, "t.csv")
        with open(table, "w", encoding="utf-8") as sink:
            sink.write(",".join(["prompt", "response", *header, header[0]]) + "\nq,a" + ",x" * (len(header) + 1) + "\n")
        with pytest.raises(UserError, match="more than once"):
            resolve_mapping(IngestSettings(input=[table]), fingerprint=False)
