import pytest

from mrtcurate.ingest.paths import MISSING, PathError, parse
from mrtcurate.schemas import RejectReason

RECORD = {
    "instruction": "q",
    "meta": {"title": "t", "tags": ["a", "b"]},
    "completions": [{"response": "r0", "score": 1}, {"response": "r1"}, {"text": "no response key"}],
    "response.text": "a CSV header with a dot",
}


def test_plain_nested_and_indexed_paths():
    assert parse("instruction").get(RECORD) == "q"
    assert parse("meta.title").get(RECORD) == "t"
    assert parse("meta.tags[1]").get(RECORD) == "b"
    assert parse("meta.tags[-1]").get(RECORD) == "b"
    assert parse("completions[0].response").get(RECORD) == "r0"
    assert parse("meta.tags[5]").get(RECORD) is MISSING
    assert parse("meta.nothing.deeper").get(RECORD) is MISSING
    assert parse("response.text").get(RECORD) == "a CSV header with a dot"


def test_fan_out_gives_one_value_per_element_and_aligned_paths_share_positions():
    responses = parse("completions[*].response").fan(RECORD)
    scores = parse("completions[*].score").fan(RECORD)
    assert responses == ["r0", "r1", MISSING]
    assert scores == [1, MISSING, MISSING]
    assert parse("absent[*].x").fan(RECORD) is MISSING
    assert parse("completions[*].response").element(2) == "completions[2].response"


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"completions": []}, RejectReason.EMPTY_LIST),
        ({"completions": {"response": "r"}}, RejectReason.NOT_A_LIST),
        ({"completions": "r"}, RejectReason.NOT_A_LIST),
    ],
)
def test_fan_out_over_an_empty_list_or_a_non_list_is_a_path_error(fields, reason):
    with pytest.raises(PathError) as raised:
        parse("completions[*].response").fan(fields)
    assert raised.value.reason == reason and "completions" in raised.value.detail


@pytest.mark.parametrize("text", ["", "a..b", "a.", ".a", "a[x]", "a[*]b", "a[*].b[*]", "a b]"])
def test_malformed_paths_are_refused(text):
    with pytest.raises(ValueError):
        parse(text)


def test_missing_detail_says_where_the_path_stops_and_what_is_there():
    detail = parse("completions[*].respons").missing_detail(RECORD)
    assert "completions[0] has no 'respons'" in detail and "response" in detail
    assert "the record has no 'nope'" in parse("nope.x").missing_detail(RECORD)
