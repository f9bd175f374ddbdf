"""Presets: the mapping options of the public corpus shapes, by name, in this one table.

A preset is only a named set of options (the same names as the flags and YAML keys): `build_config`
puts it under the file's and the command line's values, so any option given explicitly wins. The
README's preset table and `mrt run --help` are generated from here. It sits with the options it names
rather than in ingest/, because the config is built from it and schemas/ imports nothing above it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    shape: str  # the public record shape it reads, as a user would recognise it
    options: dict
    example: str  # the README's one-line command, run as written by a test on tests/fixtures/shapes


PRESETS: dict[str, Preset] = {
    "ultrafeedback": Preset(
        "`instruction` + `completions: [{response, overall_score, ...}]`",
        {
            "layout": "grouped",
            "prompt_field": "instruction",
            "response_field": "completions[*].response",
            "reward_field": "completions[*].overall_score",
        },
        "mrt run --preset ultrafeedback --input ultrafeedback.jsonl --output curated/ --selector topk",
    ),
    "nectar": Preset(
        "`prompt` (a `Human:`/`Assistant:` transcript, split into chat turns) + `answers: [{answer, model, rank}]`, rank 1 best",
        {
            "layout": "grouped",
            "prompt_field": "prompt",
            "response_field": "answers[*].answer",
            "reward_field": "answers[*].rank",
            "reward_order": "lower",
        },
        "mrt run --preset nectar --input nectar.jsonl --output curated/ --selector qd",
    ),
    "vllm": Preset(
        "sampling output: `prompt` + `outputs: [{text, finish_reason, cumulative_logprob, ...}]`; generations cut off at the length limit are truncated_response rejects",
        {
            "layout": "grouped",
            "prompt_field": "prompt",
            "response_field": "outputs[*].text",
            "finish_reason_field": "outputs[*].finish_reason",
        },
        "mrt run --preset vllm --input vllm.jsonl --output curated/",
    ),
    "sharegpt": Preset(
        "`conversations: [{from: human/gpt/system, value}]`",
        {"layout": "chat", "messages_field": "conversations", "role_key": "from", "text_key": "value"},
        "mrt run --preset sharegpt --input sharegpt.jsonl --output curated/",
    ),
    "alpaca": Preset(
        "`instruction` + `input` (often empty) + `output`",
        {"layout": "flat", "prompt_template": "{instruction}\n\n{input}", "response_field": "output"},
        "mrt run --preset alpaca --input alpaca.jsonl --output curated/",
    ),
    "oasst": Preset(
        "OpenAssistant message trees: a root `prompt` message with nested `replies`, each with `role`, `text`, `rank`, `deleted`, `review_result`",
        {
            "layout": "tree",
            "prompt_field": "prompt",
            "replies_field": "replies",
            "role_key": "role",
            "text_key": "text",
            "reward_field": "rank",
            "reward_order": "lower",
        },
        "mrt run --preset oasst --input oasst_trees.jsonl --output curated/ --selector topk",
    ),
    "oasst-nested": Preset(
        "OpenAssistant message trees exported one root message per line: the record itself is the prompt message, its `replies` nested",
        {
            "layout": "tree",
            "prompt_field": "$",
            "replies_field": "replies",
            "role_key": "role",
            "text_key": "text",
            "reward_field": "rank",
            "reward_order": "lower",
        },
        "mrt run --preset oasst-nested --input oasst_nested.jsonl --output curated/ --selector topk",
    ),
    "oasst-messages": Preset(
        "OpenAssistant messages exported flat: one message per row with `message_id`, `parent_id` and `message_tree_id`",
        {
            "layout": "tree",
            "message_id_field": "message_id",
            "parent_field": "parent_id",
            "tree_id_field": "message_tree_id",
            "role_key": "role",
            "text_key": "text",
            "reward_field": "rank",
            "reward_order": "lower",
        },
        "mrt run --preset oasst-messages --input oasst_messages.jsonl --output curated/ --selector topk",
    ),
    "hh-rlhf": Preset(
        "Anthropic HH-RLHF: `chosen` + `rejected`, each a whole `Human:`/`Assistant:` transcript (split into chat turns), or a `prompt` and two texts; rewards 1 / 0",
        {"layout": "pairs", "prompt_field": "prompt", "chosen_field": "chosen", "rejected_field": "rejected"},
        "mrt run --preset hh-rlhf --input hh_pairs.jsonl --output curated/ --selector topk --k 1",
    ),
    "ultrafeedback-binarized": Preset(
        "preference pairs as chat: `prompt` + `chosen`/`rejected` message lists + `score_chosen`/`score_rejected`",
        {"layout": "pairs", "prompt_field": "prompt", "chosen_field": "chosen", "rejected_field": "rejected"},
        "mrt run --preset ultrafeedback-binarized --input uf_binarized.jsonl --output curated/ --selector topk --k 1",
    ),
}
