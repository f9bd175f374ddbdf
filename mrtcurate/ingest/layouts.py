"""Map one parsed record onto candidates, by layout: flat, grouped, chat or pairs.

Accounting unit: each candidate is one unit, and so is each reject. A record that fails as a whole
(no prompt, say) is one reject; a grouped or pairs record whose prompt is fine yields one unit per response.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass

from mrtcurate.ids import identity_key, normalize_text, stable_id
from mrtcurate.ingest.formats import RawRecord
from mrtcurate.schemas import Candidate, Message, Reject, RejectReason
from mrtcurate.schemas.config import IngestSettings

LAYOUTS = ("flat", "grouped", "chat", "pairs")
# Preference-data conventions for per-side scores (UltraFeedback and others); absent, chosen=1 and rejected=0.
_PAIR_SCORE_FIELDS = (("score_chosen", "score_rejected"), ("chosen_score", "rejected_score"))


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
        )

    def layout_fields(self) -> list[tuple[str, str]]:
        """(option, field) pairs every record of this layout must carry; used to check the mapping up front."""
        return {
            "flat": [("prompt_field", self.prompt), ("response_field", self.response)],
            "grouped": [("prompt_field", self.prompt), ("response_field", self.response)],
            "chat": [("messages_field", self.messages)],
            "pairs": [("chosen_field", self.chosen), ("rejected_field", self.rejected)],
        }[self.layout]

    def optional_fields(self) -> list[tuple[str, str]]:
        optional = [
            ("reward_field", self.reward),
            ("id_field", self.id),
            ("source_field", self.source),
            ("feature_column", self.feature),
        ]
        return [(option, field) for option, field in optional if field is not None]


def detect_layout(fields: dict, mapping: FieldMapping) -> str:
    if mapping.messages in fields:
        return "chat"
    if mapping.chosen in fields and mapping.rejected in fields:
        return "pairs"
    if isinstance(fields.get(mapping.response), list):
        return "grouped"
    return "flat"


class _Invalid(Exception):
    def __init__(self, reason: RejectReason, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def to_candidates(record: RawRecord, mapping: FieldMapping, source_file: str) -> Iterator[Candidate | Reject]:
    def reject(invalid: _Invalid, where: str = "") -> Reject:
        detail = f"{where}: {invalid.detail}" if where else invalid.detail
        return Reject(record.text, invalid.reason.value, detail, source_file, record.row)

    fields = record.fields
    try:
        source = _source(fields, mapping, source_file)
        if mapping.layout == "chat":
            prompt_text, messages, completion = _split_chat(fields.get(mapping.messages), mapping.messages)
            prompt_id = _prompt_id(fields, mapping, _chat_identity(messages))
            reward = _reward(fields.get(mapping.reward)) if mapping.reward else None
            yield _candidate(prompt_id, prompt_text, completion, reward, source, messages, _feature(fields, mapping))
            return
        if mapping.layout == "pairs":
            yield from _pair_candidates(fields, mapping, source, reject)
            return
        prompt_text = _text(fields, mapping.prompt, "prompt")
        prompt_id = _prompt_id(fields, mapping, identity_key(prompt_text))
        if mapping.layout == "flat":
            completion = _text(fields, mapping.response, "response")
            reward = _reward(fields.get(mapping.reward)) if mapping.reward else None
            yield _candidate(prompt_id, prompt_text, completion, reward, source, None, _feature(fields, mapping))
            return
        responses, rewards = _grouped_lists(fields, mapping)
    except _Invalid as invalid:
        yield reject(invalid)
        return
    for index, response in enumerate(responses):
        try:
            completion = _check_text(response, "response", f"{mapping.response}[{index}]")
            reward = _reward(rewards[index]) if rewards is not None else None
            yield _candidate(prompt_id, prompt_text, completion, reward, source, None)
        except _Invalid as invalid:
            yield reject(invalid, f"{mapping.response}[{index}]")


def _candidate(prompt_id, prompt_text, completion, reward, source, messages, feature=None) -> Candidate:
    return Candidate(
        prompt_id=prompt_id,
        response_id=stable_id(identity_key(completion)),
        prompt=prompt_text,
        completion=completion,
        reward=reward,
        source=source,
        messages=messages,
        feature=feature,
    )


def _feature(fields: dict, mapping: FieldMapping) -> tuple[float, ...] | None:
    if mapping.feature is None:
        return None
    value = fields.get(mapping.feature)
    if not isinstance(value, (list, tuple)) or not value:
        raise _Invalid(RejectReason.INVALID_FEATURE, f"'{mapping.feature}' is not a non-empty list of numbers")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value):
        raise _Invalid(RejectReason.INVALID_FEATURE, f"'{mapping.feature}' holds a non-finite or non-numeric value")
    if mapping.feature_dim is not None and len(value) != mapping.feature_dim:
        raise _Invalid(RejectReason.INVALID_FEATURE, f"'{mapping.feature}' has {len(value)} values, not {mapping.feature_dim}")
    return tuple(float(x) for x in value)


def _source(fields: dict, mapping: FieldMapping, source_file: str) -> str:
    value = fields.get(mapping.source) if mapping.source else None
    if value is None or value == "":
        return source_file.rsplit("/", 1)[-1]
    return _encodable(str(value), mapping.source)


def _prompt_id(fields: dict, mapping: FieldMapping, identity: str) -> str:
    if mapping.id is None:
        return stable_id(identity)
    value = fields.get(mapping.id)
    if value is None or value == "" or isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Invalid(RejectReason.MISSING_ID, f"field '{mapping.id}' holds no usable id: {value!r}")
    return _encodable(str(value), mapping.id)


def _text(fields: dict, name: str, role: str) -> str:
    if name not in fields or fields[name] is None:
        reason = RejectReason.MISSING_PROMPT if role == "prompt" else RejectReason.MISSING_RESPONSE
        raise _Invalid(reason, f"'{name}' is null" if name in fields else f"no '{name}' field")
    return _check_text(fields[name], role, name)


def _encodable(value: str, name: str) -> str:
    """JSON's \\ud800-style escapes decode to lone surrogates, which no UTF-8 output (ids, Parquet) can hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise _Invalid(
            RejectReason.INVALID_UNICODE, f"'{name}' holds {value[error.start]!r}, a lone surrogate that UTF-8 cannot carry"
        ) from None
    return value


def _check_text(value: object, role: str, name: str) -> str:
    prompt = role == "prompt"
    if not isinstance(value, str):
        reason = RejectReason.PROMPT_NOT_STRING if prompt else RejectReason.RESPONSE_NOT_STRING
        raise _Invalid(reason, f"'{name}' is a {type(value).__name__}, not a string")
    text = normalize_text(_encodable(value, name))
    if not text:
        raise _Invalid(RejectReason.EMPTY_PROMPT if prompt else RejectReason.EMPTY_RESPONSE, f"'{name}' is blank")
    return text


def _reward(value: object) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value) if isinstance(value, (int, float, str)) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise _Invalid(RejectReason.INVALID_REWARD, f"reward {value!r} is not a finite number")
    return number


def _grouped_lists(fields: dict, mapping: FieldMapping) -> tuple[list, list | None]:
    responses = fields.get(mapping.response)
    if not isinstance(responses, list) or not responses:
        raise _Invalid(RejectReason.MISSING_RESPONSE, f"'{mapping.response}' is not a non-empty list")
    if mapping.reward is None or fields.get(mapping.reward) is None:
        return responses, None
    rewards = fields[mapping.reward]
    if not isinstance(rewards, list) or len(rewards) != len(responses):
        size = len(rewards) if isinstance(rewards, list) else "not a list"
        raise _Invalid(RejectReason.REWARD_LENGTH_MISMATCH, f"{len(responses)} responses, rewards: {size}")
    return responses, rewards


def _split_chat(value: object, name: str) -> tuple[str, tuple[Message, ...], str]:
    """The last assistant turn is the response; the turns before it (system included) are the prompt."""
    if not isinstance(value, list) or not value:
        raise _Invalid(RejectReason.INVALID_MESSAGES, f"'{name}' is not a non-empty list of turns")
    turns = []
    for index, turn in enumerate(value):
        if not (isinstance(turn, dict) and isinstance(turn.get("role"), str) and isinstance(turn.get("content"), str)):
            raise _Invalid(RejectReason.INVALID_MESSAGES, f"turn {index} lacks a string role and content")
        role = _encodable(turn["role"], f"{name}[{index}].role")
        turns.append(Message(role, normalize_text(_encodable(turn["content"], f"{name}[{index}].content"))))
    last_assistant = max((i for i, turn in enumerate(turns) if turn.role == "assistant"), default=None)
    if last_assistant is None:
        raise _Invalid(RejectReason.INVALID_MESSAGES, "no assistant turn")
    prompt_turns = tuple(turns[:last_assistant])
    completion = turns[last_assistant].content
    if not completion:
        raise _Invalid(RejectReason.EMPTY_RESPONSE, "the last assistant turn is blank")
    if not any(turn.content for turn in prompt_turns):
        raise _Invalid(RejectReason.EMPTY_PROMPT, "no non-blank turn before the last assistant turn")
    return _render_turns(prompt_turns), prompt_turns + (turns[last_assistant],), completion


def _render_turns(turns: tuple[Message, ...]) -> str:
    if len(turns) == 1 and turns[0].role == "user":
        return turns[0].content
    return "\n\n".join(f"{turn.role}: {turn.content}" for turn in turns)


def _chat_identity(messages: tuple[Message, ...]) -> str:
    return json.dumps([[turn.role, identity_key(turn.content)] for turn in messages[:-1]])


def _pair_candidates(fields: dict, mapping: FieldMapping, source: str, reject) -> Iterator[Candidate | Reject]:
    rewards = _pair_rewards(fields)
    shared_prompt = None
    if any(isinstance(fields.get(side), str) for side in (mapping.chosen, mapping.rejected)):
        shared_prompt = _text(fields, mapping.prompt, "prompt")
    for side, reward in zip((mapping.chosen, mapping.rejected), rewards):
        try:
            value = fields.get(side)
            if isinstance(value, list):
                prompt_text, messages, completion = _split_chat(value, side)
                identity = _chat_identity(messages)
            else:
                if value is None:
                    raise _Invalid(RejectReason.MISSING_RESPONSE, f"no '{side}' field")
                completion = _check_text(value, "response", side)
                prompt_text, messages, identity = shared_prompt, None, identity_key(shared_prompt)
            yield _candidate(_prompt_id(fields, mapping, identity), prompt_text, completion, reward, source, messages)
        except _Invalid as invalid:
            yield reject(invalid, side)


def _pair_rewards(fields: dict) -> tuple[float | None, float | None]:
    for chosen_field, rejected_field in _PAIR_SCORE_FIELDS:
        if chosen_field in fields and rejected_field in fields:
            return _reward(fields[chosen_field]), _reward(fields[rejected_field])
    return 1.0, 0.0
