import pytest

from mrtcurate.ingest.fields import Invalid
from mrtcurate.ingest.template import parse


@pytest.mark.parametrize(
    "record, prompt",
    [
        ({"instruction": "Do x", "input": "data"}, "Do x\n\ndata"),
        ({"instruction": "Do x", "input": ""}, "Do x"),
        ({"instruction": "Do x", "input": "  \n"}, "Do x"),
        ({"instruction": "Do x", "input": None}, "Do x"),
        ({"instruction": "", "input": "data"}, "data"),
    ],
)
def test_an_empty_part_leaves_no_dangling_separator(record, prompt):
    assert parse(r"{instruction}\n\n{input}").render(record) == prompt


def test_leading_and_trailing_text_stay_and_a_middle_part_takes_its_lead_in_along():
    template = parse(
        "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Context:\n{meta.context}\n\n### Response:"
    )
    assert (
        template.render({"instruction": "Sum", "input": "", "meta": {"context": "c"}})
        == "### Instruction:\nSum\n\n### Context:\nc\n\n### Response:"
    )
    assert (
        template.render({"instruction": "Sum", "input": 3, "meta": {"context": None}})
        == "### Instruction:\nSum\n\n### Input:\n3\n\n### Response:"
    )


def test_a_missing_field_and_a_non_text_part_are_rejects():
    template = parse("{instruction} {input}")
    with pytest.raises(Invalid) as missing:
        template.render({"instruction": "x"})
    assert missing.value.reason.value == "missing_template_field" and "'input'" in missing.value.detail
    with pytest.raises(Invalid) as listed:
        template.render({"instruction": "x", "input": ["a"]})
    assert listed.value.reason.value == "prompt_not_string"


def test_a_template_without_fields_is_refused():
    with pytest.raises(ValueError):
        parse("no braces here")
