import math

import pytest

from mrtcurate.ingest.formats import RawRecord
from mrtcurate.ingest.layouts import FieldMapping, detect_layout, to_units
from mrtcurate.schemas import Candidate, Reject


def units(fields, layout="flat", **mapping):
    return list(
        to_units(RawRecord(fields=fields, text="{}", row=7), FieldMapping(layout=layout, **mapping), "dir/f.jsonl")
    )


def only(items):
    assert len(items) == 1
    return items[0]


def test_flat_record_becomes_keyed_candidate():
    candidate = only(units({"prompt": " Hi  there ", "response": "Hello!\n", "score": "0.5"}, reward="score"))
    assert isinstance(candidate, Candidate)
    assert (candidate.prompt, candidate.completion, candidate.reward, candidate.source) == (
        "Hi  there",
        "Hello!",
        0.5,
        "f.jsonl",
    )
    same_prompt = only(units({"prompt": "Hi there", "response": "other"}))
    assert same_prompt.prompt_id == candidate.prompt_id and same_prompt.response_id != candidate.response_id


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"response": "r"}, "missing_prompt"),
        ({"prompt": "p"}, "missing_response"),
        ({"prompt": 3, "response": "r"}, "prompt_not_string"),
        ({"prompt": "p", "response": ["r"]}, "response_not_string"),
        ({"prompt": "p", "response": " \n\t"}, "empty_response"),
        ({"prompt": "", "response": "r"}, "empty_prompt"),
        ({"prompt": "p", "response": "r", "score": math.nan}, "invalid_reward"),
        ({"prompt": "p", "response": "r", "score": math.inf}, "invalid_reward"),
        ({"prompt": "p", "response": "r", "score": "high"}, "invalid_reward"),
        ({"prompt": "p", "response": "r", "score": {"v": 1}}, "invalid_reward"),
    ],
)
def test_flat_rejects(fields, reason):
    reject = only(units(fields, reward="score"))
    assert isinstance(reject, Reject) and reject.reason == reason and reject.source_row == 7


def test_missing_reward_is_null_not_a_reject():
    assert only(units({"prompt": "p", "response": "r", "score": None}, reward="score")).reward is None


def test_id_field_groups_by_the_given_id():
    candidate = only(units({"qid": 12, "prompt": "p", "response": "r"}, id="qid"))
    assert candidate.prompt_id == "12"
    assert only(units({"prompt": "p", "response": "r"}, id="qid")).reason == "missing_id"


def test_grouped_rejects_single_responses_and_keeps_the_rest():
    items = units({"prompt": "p", "response": ["a", "", "c"], "r": [1, 2, 3]}, layout="grouped", reward="r")
    assert [(type(i).__name__, getattr(i, "reward", None) or getattr(i, "reason", None)) for i in items] == [
        ("Candidate", 1.0),
        ("Reject", "empty_response"),
        ("Candidate", 3.0),
    ]
    assert "response[1]" in items[1].detail
    mismatch = only(units({"prompt": "p", "response": ["a", "b"], "r": [1]}, layout="grouped", reward="r"))
    assert mismatch.reason == "reward_length_mismatch"


def test_chat_last_assistant_turn_is_the_response_and_system_counts_in_the_prompt():
    turns = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Name a fruit"},
        {"role": "assistant", "content": "Apple"},
    ]
    candidate = only(units({"messages": turns}, layout="chat"))
    assert candidate.completion == "Apple"
    assert candidate.prompt.startswith("system: Be brief.") and candidate.prompt.endswith("user: Name a fruit")
    assert [turn.content for turn in candidate.messages] == ["Be brief.", "Hi", "Hello", "Name a fruit", "Apple"]
    no_system = only(units({"messages": turns[1:]}, layout="chat"))
    assert no_system.prompt_id != candidate.prompt_id
    assert only(units({"messages": turns[:2]}, layout="chat")).reason == "invalid_messages"
    assert only(units({"messages": [{"role": "user"}]}, layout="chat")).reason == "invalid_messages"


def test_pairs_give_two_candidates_with_default_or_given_rewards():
    chosen, rejected = units({"prompt": "p", "chosen": "good", "rejected": "bad"}, layout="pairs")
    assert (chosen.reward, rejected.reward) == (1.0, 0.0) and chosen.prompt_id == rejected.prompt_id
    scored = units(
        {"prompt": "p", "chosen": "good", "rejected": "bad", "score_chosen": 8, "score_rejected": 3}, layout="pairs"
    )
    assert [c.reward for c in scored] == [8.0, 3.0]
    one_bad = units({"prompt": "p", "chosen": "good", "rejected": "  "}, layout="pairs")
    assert [type(u).__name__ for u in one_bad] == ["Candidate", "Reject"] and "rejected" in one_bad[1].detail


def test_pairs_as_conversations():
    convo = lambda answer: [{"role": "user", "content": "q"}, {"role": "assistant", "content": answer}]
    chosen, rejected = units({"chosen": convo("yes"), "rejected": convo("no")}, layout="pairs")
    assert (chosen.completion, rejected.completion, chosen.prompt) == ("yes", "no", "q")
    assert chosen.prompt_id == rejected.prompt_id


def test_detect_layout():
    mapping = FieldMapping(layout="flat")
    assert detect_layout({"messages": []}, mapping) == "chat"
    assert detect_layout({"prompt": "p", "chosen": "a", "rejected": "b"}, mapping) == "pairs"
    assert detect_layout({"prompt": "p", "response": ["a"]}, mapping) == "grouped"
    assert detect_layout({"prompt": "p", "response": "a"}, mapping) == "flat"


def test_aligned_fan_out_gives_each_response_its_own_reward_and_names_the_element_it_rejects():
    record = {
        "instruction": "q",
        "completions": [
            {"response": "a", "overall_score": 7},
            {"response": "b"},
            {"overall_score": 2},
            {"response": "d", "overall_score": "x"},
        ],
    }
    items = units(
        record,
        layout="grouped",
        prompt="instruction",
        response="completions[*].response",
        reward="completions[*].overall_score",
    )
    assert [(type(i).__name__, getattr(i, "reward", None), getattr(i, "reason", None)) for i in items] == [
        ("Candidate", 7.0, None),
        ("Candidate", None, None),
        ("Reject", None, "missing_response"),
        ("Reject", None, "invalid_reward"),
    ]
    assert items[2].detail.startswith("completions[2].response") and items[3].detail.startswith(
        "completions[3].response"
    )


@pytest.mark.parametrize(
    "completions, reason",
    [([], "empty_list"), ({"response": "a"}, "not_a_list"), (None, "missing_response")],
)
def test_a_fan_out_that_cannot_fan_is_one_reject(completions, reason):
    record = {"prompt": "q", "completions": completions}
    assert only(units(record, layout="grouped", response="completions[*].response")).reason == reason


def test_misaligned_response_and_reward_lists_are_one_reject():
    record = {"prompt": "q", "outputs": [{"text": "a"}, {"text": "b"}], "scores": [1]}
    assert (
        only(units(record, layout="grouped", response="outputs[*].text", reward="scores")).reason
        == "reward_length_mismatch"
    )


def test_lower_is_better_orients_rewards_so_merging_keeps_the_best_rank():
    record = {
        "prompt": "q",
        "answers": [{"answer": "same", "rank": 3}, {"answer": "same", "rank": 1}, {"answer": "other", "rank": 2}],
    }
    first, second, other = units(
        record, layout="grouped", response="answers[*].answer", reward="answers[*].rank", reward_order="lower"
    )
    assert (first.reward, second.reward, other.reward) == (-3.0, -1.0, -2.0)
    assert first.merged_with(second).reward == -1.0  # rank 1, written back as 1 by the curated rows


def test_prompt_template_keys_prompts_by_the_rendered_text():
    alone = only(
        units(
            {"instruction": "Sum it", "input": "", "output": "4"},
            prompt_template="{instruction}\\n\\n{input}",
            response="output",
        )
    )
    plain = only(units({"prompt": "Sum it", "response": "4"}))
    assert alone.prompt == "Sum it" and alone.prompt_id == plain.prompt_id
    missing = only(
        units({"instruction": "Sum it", "output": "4"}, prompt_template="{instruction}\\n\\n{input}", response="output")
    )
    assert missing.reason == "missing_template_field"


def test_sharegpt_turns_and_role_aliases_make_the_chat_layouts_messages():
    turns = [
        {"from": "system", "value": "Be brief."},
        {"from": "human", "value": "Hi"},
        {"from": "gpt", "value": "Hello"},
    ]
    sharegpt = only(units({"conversations": turns}, layout="chat", messages="conversations"))
    chat = only(
        units(
            {
                "messages": [
                    {"role": r, "content": c}
                    for r, c in (("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"))
                ]
            },
            layout="chat",
        )
    )
    assert sharegpt.messages == chat.messages and sharegpt.prompt_id == chat.prompt_id
    mapped = only(
        units(
            {"dialog": [{"speaker": "Prompter", "says": "Hi"}, {"speaker": "bard", "says": "Yo"}]},
            layout="chat",
            messages="dialog",
            role_key="speaker",
            text_key="says",
        )
    )
    assert [turn.role for turn in mapped.messages] == ["user", "assistant"]


def test_a_path_can_only_fan_out_for_responses_and_rewards():
    with pytest.raises(ValueError, match="fan out"):
        FieldMapping(layout="grouped", prompt="turns[*].text")


def test_hh_rlhf_transcripts_split_into_turns_and_both_sides_share_the_prompt():
    record = {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: A fruit?\n\nAssistant: Apple.",
        "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: A fruit?\n\nAssistant: Rock.",
    }
    chosen, rejected = units(record, layout="pairs")
    assert (chosen.completion, chosen.reward, rejected.completion, rejected.reward) == ("Apple.", 1.0, "Rock.", 0.0)
    assert chosen.prompt_id == rejected.prompt_id and chosen.prompt == "user: Hi\n\nassistant: Hello!\n\nuser: A fruit?"
    assert [turn.role for turn in chosen.messages] == ["user", "assistant", "user", "assistant"]
    blank = units(
        {"chosen": "\n\nHuman: Hi\n\nAssistant:", "rejected": "\n\nHuman: Hi\n\nAssistant: Yo"}, layout="pairs"
    )
    assert [getattr(unit, "reason", "kept") for unit in blank] == ["empty_response", "kept"]
    # With a prompt field, texts that merely start with "Human:" stay responses.
    plain = units({"prompt": "p", "chosen": "Human: is a word", "rejected": "no"}, layout="pairs")
    assert [unit.completion for unit in plain] == ["Human: is a word", "no"]


def test_a_prompt_awaiting_the_assistant_in_a_transcript_becomes_chat_turns():
    record = {
        "prompt": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: A fruit?\n\nAssistant:",
        "answers": [{"answer": "Apple."}, {"answer": "Pear."}],
    }
    apple, pear = units(record, layout="grouped", response="answers[*].answer")
    assert apple.prompt == "user: Hi\n\nassistant: Hello!\n\nuser: A fruit?" and apple.prompt_id == pear.prompt_id
    assert [(turn.role, turn.content) for turn in apple.messages][-2:] == [
        ("user", "A fruit?"),
        ("assistant", "Apple."),
    ]
    single = only(units({"prompt": "Human: What is 2+2?\n\nAssistant:", "response": "4"}))
    assert (single.prompt, len(single.messages)) == ("What is 2+2?", 2)
    # Text that merely starts with "Human:" is an ordinary prompt.
    plain = only(units({"prompt": "Human: a word, and more", "response": "r"}))
    assert (plain.prompt, plain.messages) == ("Human: a word, and more", None)


def test_a_fanning_source_path_gives_each_response_its_own_source():
    # Issue 20: --source-field could not fan out, so per-answer models (UltraFeedback, Nectar) got no source.
    record = {
        "prompt": "q",
        "answers": [{"answer": "a", "model": "gpt"}, {"answer": "b", "model": ""}, {"answer": "c", "model": "llama"}],
    }
    found = units(record, "grouped", response="answers[*].answer", source="answers[*].model")
    assert [(unit.completion, unit.source) for unit in found] == [("a", "gpt"), ("b", "f.jsonl"), ("c", "llama")]
    # A list of another length leaves every response with the record's source.
    uneven = {"prompt": "q", "answers": [{"answer": "a"}, {"answer": "b"}], "models": ["gpt"]}
    assert {unit.source for unit in units(uneven, "grouped", response="answers[*].answer", source="models[*]")} == {
        "f.jsonl"
    }
    with pytest.raises(ValueError, match="only the grouped layout's responses can follow"):
        FieldMapping(layout="flat", source="answers[*].model")


def test_responses_cut_off_at_the_length_limit_are_rejected_unless_kept():
    # Issue 23: the vllm preset kept generations with finish_reason "length".
    record = {
        "prompt": "p",
        "outputs": [
            {"text": "cut off mid", "finish_reason": "length"},
            {"text": "whole.", "finish_reason": "stop"},
            {"text": "no reason"},
        ],
    }
    grouped = units(record, layout="grouped", response="outputs[*].text", finish_reason="outputs[*].finish_reason")
    assert [type(unit).__name__ for unit in grouped] == ["Reject", "Candidate", "Candidate"]
    assert grouped[0].reason == "truncated_response" and "outputs[0]" in grouped[0].detail
    kept = units(
        record,
        layout="grouped",
        response="outputs[*].text",
        finish_reason="outputs[*].finish_reason",
        drop_truncated=False,
    )
    assert all(isinstance(unit, Candidate) for unit in kept)
    flat = only(units({"prompt": "p", "response": "r", "stop": "max_tokens"}, finish_reason="stop"))
    assert isinstance(flat, Reject) and flat.reason == "truncated_response"
    chat = {
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        "finish_reason": "length",
    }
    assert only(units(chat, layout="chat", finish_reason="finish_reason")).reason == "truncated_response"
    assert isinstance(
        only(units({**chat, "finish_reason": "stop"}, layout="chat", finish_reason="finish_reason")), Candidate
    )
