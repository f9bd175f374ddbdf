"""Map one parsed record onto candidates, by layout: flat, grouped, chat, pairs or tree.

Accounting unit: each candidate is one unit, and so is each reject. A record that fails as a whole
(no prompt, say) is one reject; a grouped or pairs record whose prompt is fine yields one unit per
response; a message tree yields one unit per assistant reply (ingest/trees.py).

Every field option is a field path (ingest/paths.py); a plain name is the one-step path.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from mrtcurate.ids import identity_key, stable_id
from mrtcurate.ingest import paths, template
from mrtcurate.ingest.fields import (
    Invalid,
    candidate,
    chat_identity,
    check_text,
    encodable,
    is_transcript,
    prompt_id,
    render_turns,
    reward,
    split_chat,
    split_transcript,
    transcript_prompt,
)
from mrtcurate.ingest.formats import RawRecord
from mrtcurate.ingest.trees import message_row, nested_tree_units
from mrtcurate.schemas import Candidate, ContextTurns, Message, Reject, RejectReason, TreeMessage
from mrtcurate.schemas.config import IngestSettings

LAYOUTS = ("flat", "grouped", "chat", "pairs", "tree")
# Preference-data conventions for per-side scores (UltraFeedback and others); absent, chosen=1 and rejected=0.
_PAIR_SCORE_FIELDS = (("score_chosen", "score_rejected"), ("chosen_score", "rejected_score"))
# The options whose path may fan out with [*]: the responses of a grouped record, their rewards, sources and
# finish reasons.
_FANNING_OPTIONS = ("response_field", "reward_field", "source_field", "finish_reason_field")
# Finish reasons that mean the generator hit its length limit: vLLM, OpenAI and TGI say `length`, Anthropic `max_tokens`.
_CUT_OFF = frozenset({"length", "max_tokens"})


@dataclass(frozen=True)
class FieldMapping:
    layout: str
    prompt: str = "prompt"
    response: str = "response"
    reward: str | None = None
    id: str | None = None
    source: str | None = None
    messages: str = "messages"
    chosen: str = "chosen"
    rejected: str = "rejected"
    feature: str | None = None
    feature_dim: int | None = None  # fixed by the first probed record; other lengths are rejected
    prompt_template: str | None = None
    reward_order: str = "higher"
    role_key: str = "role"
    text_key: str = "content"
    replies: str = "replies"
    message_id: str | None = None
    parent: str | None = None
    tree_id: str | None = None
    keep_deleted: bool = False
    finish_reason: str | None = None
    drop_truncated: bool = True

    def __post_init__(self):
        # Malformed paths and templates fail here, on the driver, before any record is read.
        every = {
            "prompt_field": self.prompt,
            "response_field": self.response,
            "reward_field": self.reward,
            "id_field": self.id,
            "source_field": self.source,
            "messages_field": self.messages,
            "chosen_field": self.chosen,
            "rejected_field": self.rejected,
            "feature_column": self.feature,
            "message_id_field": self.message_id,
            "parent_field": self.parent,
            "tree_id_field": self.tree_id,
            "finish_reason_field": self.finish_reason,
        }
        for option, path in every.items():
            if path is None:
                continue
            try:
                parsed = paths.parse(path)
            except ValueError as error:
                raise ValueError(f"--{option.replace('_', '-')}: {error}") from None
            if parsed.fans_out and option not in _FANNING_OPTIONS:
                raise ValueError(
                    f"--{option.replace('_', '-')} '{path}': only --response-field, --reward-field, --source-field and --finish-reason-field can fan out with [*]"
                )
        if self.prompt_template is not None:
            template.parse(self.prompt_template)
        if (self.message_id is None) != (self.parent is None):
            raise ValueError("the one-message-per-row tree layout needs both --message-id-field and --parent-field")
        if self.layout not in ("grouped", "auto") and paths.parse(self.response).fans_out:
            raise ValueError(
                f"--response-field '{self.response}' fans out with [*], which is the grouped layout, not {self.layout}"
            )
        if self.layout not in ("grouped", "auto") and self.source is not None and paths.parse(self.source).fans_out:
            raise ValueError(
                f"--source-field '{self.source}' fans out with [*], which only the grouped layout's responses can follow"
            )

    @classmethod
    def from_settings(cls, ingest: IngestSettings, layout: str, feature: str | None = None) -> FieldMapping:
        """The one place where the run's field options become the parser's mapping (with a resolved layout)."""
        return cls(
            layout=layout,
            prompt=ingest.prompt_field,
            response=ingest.response_field,
            reward=ingest.reward_field,
            id=ingest.id_field,
            source=ingest.source_field,
            messages=ingest.messages_field,
            chosen=ingest.chosen_field,
            rejected=ingest.rejected_field,
            feature=feature,
            prompt_template=ingest.prompt_template,
            reward_order=ingest.reward_order,
            role_key=ingest.role_key,
            text_key=ingest.text_key,
            replies=ingest.replies_field,
            message_id=ingest.message_id_field,
            parent=ingest.parent_field,
            tree_id=ingest.tree_id_field,
            keep_deleted=ingest.keep_deleted,
            finish_reason=ingest.finish_reason_field,
            drop_truncated=ingest.drop_truncated,
        )

    @property
    def reward_sign(self) -> float:
        return -1.0 if self.reward_order == "lower" else 1.0

    @property
    def message_rows(self) -> bool:
        """The tree layout with one message per row, joined into trees inside the job."""
        return self.layout == "tree" and self.message_id is not None

    def paths(self) -> list[tuple[str, str]]:
        return [*self.layout_fields(), *self.optional_fields()]

    def layout_fields(self) -> list[tuple[str, str]]:
        """(option, field path) pairs every record of this layout must carry; used to check the mapping up front."""
        prompt = [("prompt_field", self.prompt)]
        if self.prompt_template is not None:
            prompt = [("prompt_template", path.text) for path in template.parse(self.prompt_template).fields]
        if self.layout == "tree":
            if not self.message_rows:
                return [("prompt_field", self.prompt)]
            return [("message_id_field", self.message_id), ("parent_field", self.parent)] + (
                [("tree_id_field", self.tree_id)] if self.tree_id else []
            )
        return {
            "flat": [*prompt, ("response_field", self.response)],
            "grouped": [*prompt, ("response_field", self.response)],
            "chat": [("messages_field", self.messages)],
            "pairs": [("chosen_field", self.chosen), ("rejected_field", self.rejected)],
        }[self.layout]

    def optional_fields(self) -> list[tuple[str, str]]:
        optional = [
            (
                "reward_field",
                None if self.layout == "tree" else self.reward,
            ),  # a tree's reward is a key of each message
            ("id_field", self.id),
            ("source_field", self.source),
            ("feature_column", self.feature),
            ("finish_reason_field", self.finish_reason),
        ]
        return [(option, field) for option, field in optional if field is not None]

    def prompt_text(self, fields: dict) -> str:
        if self.prompt_template is not None:
            return check_text(template.parse(self.prompt_template).render(fields), "prompt", "--prompt-template")
        return _text(fields, self.prompt, "prompt")


def detect_layout(fields: dict, mapping: FieldMapping) -> str:
    if paths.parse(mapping.messages).get(fields) is not paths.MISSING:
        return "chat"
    if all(paths.parse(side).get(fields) is not paths.MISSING for side in (mapping.chosen, mapping.rejected)):
        return "pairs"
    response = paths.parse(mapping.response)
    if response.fans_out or isinstance(response.get(fields), list):
        return "grouped"
    return "flat"


def to_units(
    record: RawRecord, mapping: FieldMapping, source_file: str
) -> Iterator[Candidate | Reject | ContextTurns | TreeMessage]:
    """A record's accounting units (candidates and rejects); in the tree layout also the count of its
    context turns, or, one message per row, the message for the job to join (pipeline/trees.py)."""

    def reject(invalid: Invalid, where: str = "") -> Reject:
        detail = f"{where}: {invalid.detail}" if where else invalid.detail
        return Reject(record.text, invalid.reason.value, detail, source_file, record.row)

    fields = record.fields
    try:
        source = _source(fields, mapping, source_file)
        if mapping.message_rows:
            yield message_row(record, mapping, source, source_file)
            return
        if mapping.layout == "tree":
            yield from nested_tree_units(fields, mapping, source, reject)
            return
        if mapping.layout == "chat":
            prompt_text, messages, completion = split_chat(
                paths.value(fields, mapping.messages), mapping.messages, mapping.role_key, mapping.text_key
            )
            _check_finished(paths.value(fields, mapping.finish_reason) if mapping.finish_reason else None, mapping)
            yield candidate(
                _prompt_id(fields, mapping, chat_identity(messages[:-1])),
                prompt_text,
                completion,
                _reward_of(fields, mapping),
                source,
                messages,
                _feature(fields, mapping),
            )
            return
        if mapping.layout == "pairs":
            yield from _pair_candidates(fields, mapping, source, reject)
            return
        prompt_text = mapping.prompt_text(fields)
        prompt_turns = transcript_prompt(prompt_text)
        if prompt_turns is None:
            key = _prompt_id(fields, mapping, identity_key(prompt_text))
        else:
            prompt_text, key = render_turns(prompt_turns), _prompt_id(fields, mapping, chat_identity(prompt_turns))
        if mapping.layout == "flat":
            completion = _text(fields, mapping.response, "response")
            _check_finished(paths.value(fields, mapping.finish_reason) if mapping.finish_reason else None, mapping)
            yield candidate(
                key,
                prompt_text,
                completion,
                _reward_of(fields, mapping),
                source,
                _with_reply(prompt_turns, completion),
                _feature(fields, mapping),
            )
            return
        responses, rewards = _grouped_lists(fields, mapping)
    except Invalid as invalid:
        yield reject(invalid)
        return
    response_path = paths.parse(mapping.response)
    sources = _sources_by_response(fields, mapping, len(responses), source)
    finish_reasons = _finish_reasons_by_response(fields, mapping, len(responses))
    for index, response in enumerate(responses):
        where = response_path.element(index)
        try:
            if response is paths.MISSING or response is None:
                raise Invalid(RejectReason.MISSING_RESPONSE, "no such field" if response is paths.MISSING else "null")
            completion = check_text(response, "response", where)
            _check_finished(finish_reasons[index], mapping)
            value = rewards[index] if rewards is not None else None
            score = None if value is paths.MISSING else reward(value, mapping.reward_sign)
            yield candidate(key, prompt_text, completion, score, sources[index], _with_reply(prompt_turns, completion))
        except Invalid as invalid:
            yield reject(invalid, where)


def _with_reply(prompt_turns: tuple[Message, ...] | None, completion: str) -> tuple[Message, ...] | None:
    return None if prompt_turns is None else (*prompt_turns, Message("assistant", completion))


def _reward_of(fields: dict, mapping: FieldMapping) -> float | None:
    return reward(paths.value(fields, mapping.reward), mapping.reward_sign) if mapping.reward else None


def _feature(fields: dict, mapping: FieldMapping) -> tuple[float, ...] | None:
    if mapping.feature is None:
        return None
    value = paths.value(fields, mapping.feature)
    if not isinstance(value, (list, tuple)) or not value:
        raise Invalid(RejectReason.INVALID_FEATURE, f"'{mapping.feature}' is not a non-empty list of numbers")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value):
        raise Invalid(RejectReason.INVALID_FEATURE, f"'{mapping.feature}' holds a non-finite or non-numeric value")
    if mapping.feature_dim is not None and len(value) != mapping.feature_dim:
        raise Invalid(
            RejectReason.INVALID_FEATURE, f"'{mapping.feature}' has {len(value)} values, not {mapping.feature_dim}"
        )
    return tuple(float(x) for x in value)


def _source(fields: dict, mapping: FieldMapping, source_file: str) -> str:
    """The record's source; a `[*]` source path is resolved per response (_sources_by_response)."""
    fans = mapping.source is not None and paths.parse(mapping.source).fans_out
    value = paths.value(fields, mapping.source) if mapping.source and not fans else None
    if value is None or value == "":
        return source_file.rsplit("/", 1)[-1]
    return encodable(str(value), mapping.source)


def _sources_by_response(fields: dict, mapping: FieldMapping, count: int, default: str) -> list[str]:
    """Per response, the element of a `[*]` source path aligned with it (UltraFeedback's and Nectar's per-answer
    `model`); a response whose element has no source, or a list of another length, keeps the record's."""
    if mapping.source is None or not paths.parse(mapping.source).fans_out:
        return [default] * count
    try:
        values = paths.parse(mapping.source).fan(fields)
    except paths.PathError:
        return [default] * count
    if not isinstance(values, list) or len(values) != count:
        return [default] * count
    return [
        default if value in (None, "", paths.MISSING) else encodable(str(value), mapping.source) for value in values
    ]


def _check_finished(reason: object, mapping: FieldMapping) -> None:
    if mapping.drop_truncated and isinstance(reason, str) and reason in _CUT_OFF:
        raise Invalid(
            RejectReason.TRUNCATED_RESPONSE,
            f"finish reason '{reason}' in '{mapping.finish_reason}': cut off at the length limit",
        )


def _finish_reasons_by_response(fields: dict, mapping: FieldMapping, count: int) -> list[object]:
    """Per response, the element of a `[*]` finish-reason path aligned with it, or the record's one reason for
    all of them; a list of another length, or none, says nothing about any response."""
    if mapping.finish_reason is None:
        return [None] * count
    path = paths.parse(mapping.finish_reason)
    if not path.fans_out:
        return [paths.value(fields, mapping.finish_reason)] * count
    try:
        values = path.fan(fields)
    except paths.PathError:
        return [None] * count
    return values if isinstance(values, list) and len(values) == count else [None] * count


def _prompt_id(fields: dict, mapping: FieldMapping, identity: str) -> str:
    if mapping.id is None:
        return stable_id(identity)
    return prompt_id(paths.value(fields, mapping.id), mapping.id)


def _text(fields: dict, name: str, role: str) -> str:
    path = paths.parse(name)
    value = path.get(fields)
    if value is paths.MISSING or value is None:
        reason = RejectReason.MISSING_PROMPT if role == "prompt" else RejectReason.MISSING_RESPONSE
        raise Invalid(reason, f"'{name}' is null" if value is None else path.missing_detail(fields))
    return check_text(value, role, name)


def _grouped_lists(fields: dict, mapping: FieldMapping) -> tuple[list, list | None]:
    """The responses and, when mapped, their rewards, aligned by position: element i of a `[*]` list,
    or of two parallel plain lists."""
    response_path = paths.parse(mapping.response)
    reward_path = paths.parse(mapping.reward) if mapping.reward else None
    try:
        if response_path.fans_out:
            responses = response_path.fan(fields)
            if responses is paths.MISSING:
                raise Invalid(RejectReason.MISSING_RESPONSE, response_path.missing_detail(fields))
        else:
            responses = response_path.get(fields)
            if not isinstance(responses, list) or not responses:
                raise Invalid(RejectReason.MISSING_RESPONSE, f"'{mapping.response}' is not a non-empty list")
        if reward_path is None:
            return responses, None
        rewards = reward_path.fan(fields) if reward_path.fans_out else reward_path.get(fields)
    except paths.PathError as error:
        raise Invalid(error.reason, error.detail) from None
    if rewards is paths.MISSING or rewards is None:
        return responses, None
    if not isinstance(rewards, list) or len(rewards) != len(responses):
        size = len(rewards) if isinstance(rewards, list) else "not a list"
        raise Invalid(
            RejectReason.REWARD_LENGTH_MISMATCH,
            f"{len(responses)} responses in '{mapping.response}', rewards in '{mapping.reward}': {size}",
        )
    return responses, rewards


def _pair_candidates(fields: dict, mapping: FieldMapping, source: str, reject) -> Iterator[Candidate | Reject]:
    rewards = _pair_rewards(fields, mapping.reward_sign)
    sides = [(side, paths.value(fields, side)) for side in (mapping.chosen, mapping.rejected)]
    # HH-RLHF as published: no prompt field, each side the whole conversation as one transcript.
    transcripts = (
        paths.value(fields, mapping.prompt) is None
        and mapping.prompt_template is None
        and any(is_transcript(value) for _, value in sides)
    )
    texts = any(isinstance(value, str) for _, value in sides)
    shared_prompt = mapping.prompt_text(fields) if texts and not transcripts else None
    for (side, value), side_reward in zip(sides, rewards):
        try:
            if isinstance(value, list):
                prompt_text, messages, completion = split_chat(value, side, mapping.role_key, mapping.text_key)
            elif transcripts and isinstance(value, str):
                prompt_text, messages, completion = split_transcript(value, side)
            elif value is None:
                raise Invalid(RejectReason.MISSING_RESPONSE, f"no '{side}' field")
            else:
                prompt_text, messages, completion = shared_prompt, None, check_text(value, "response", side)
            identity = identity_key(shared_prompt) if messages is None else chat_identity(messages[:-1])
            yield candidate(
                _prompt_id(fields, mapping, identity), prompt_text, completion, side_reward, source, messages
            )
        except Invalid as invalid:
            yield reject(invalid, side)


def _pair_rewards(fields: dict, sign: float) -> tuple[float | None, float | None]:
    for chosen_field, rejected_field in _PAIR_SCORE_FIELDS:
        if chosen_field in fields and rejected_field in fields:
            return reward(fields[chosen_field], sign), reward(fields[rejected_field], sign)
    # No scores: chosen 1 and rejected 0 as written, or 0 and 1 where lower is better; oriented here.
    return (1.0, 0.0) if sign > 0 else (-0.0, -1.0)
