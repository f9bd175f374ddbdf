"""Checked values out of a record: texts, rewards, ids, chat turns, and the candidate they make. Every
problem is an `Invalid` carrying a stable reject reason; the layouts turn it into a reject row."""

from __future__ import annotations

import json
import math
import re

from mrtcurate.ids import identity_key, normalize_text, stable_id
from mrtcurate.schemas import Candidate, Message, RejectReason

# Role names of the public chat formats (ShareGPT's human/gpt, OpenAssistant's prompter, Gemini's model),
# read as the roles of the `messages` column; other roles (tool, function, ...) are kept as written.
ROLE_ALIASES = {
    "user": "user",
    "human": "user",
    "prompter": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "system": "system",
}
SHAREGPT_KEYS = ("from", "value")
# Anthropic's HH-RLHF transcripts: "\n\nHuman: ...\n\nAssistant: ..." in one string.
_TRANSCRIPT_TURN = re.compile(r"\n\n(Human|Assistant):[ \t]?")


class Invalid(Exception):
    def __init__(self, reason: RejectReason, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def candidate(prompt_id, prompt_text, completion, reward, source, messages, feature=None) -> Candidate:
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


def encodable(value: str, name: str) -> str:
    """JSON's \\ud800-style escapes decode to lone surrogates, which no UTF-8 output (ids, Parquet) can hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise Invalid(
            RejectReason.INVALID_UNICODE,
            f"'{name}' holds {value[error.start]!r}, a lone surrogate that UTF-8 cannot carry",
        ) from None
    return value


def check_text(value: object, role: str, name: str) -> str:
    prompt = role == "prompt"
    if not isinstance(value, str):
        reason = RejectReason.PROMPT_NOT_STRING if prompt else RejectReason.RESPONSE_NOT_STRING
        raise Invalid(reason, f"'{name}' is a {type(value).__name__}, not a string")
    text = normalize_text(encodable(value, name))
    if not text:
        raise Invalid(RejectReason.EMPTY_PROMPT if prompt else RejectReason.EMPTY_RESPONSE, f"'{name}' is blank")
    return text


_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
LARGEST_REWARD = 1e308  # an integer past float's range is no finite score


def reward(value: object, sign: float) -> float | None:
    """The reward oriented so that larger is better (`sign` -1 for --reward-order lower); the curated
    rows multiply by the sign again to give back the value as written."""
    if value is None or value == "":
        return None
    # Only JSON numbers and plain ASCII decimal strings (a CSV cell): float() would also take true/false,
    # "1_000" and other scripts' digits, none of which a judge writes as a score.
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        number = math.nan
    elif isinstance(value, str):
        number = float(value) if _DECIMAL.fullmatch(value.strip()) else math.nan
    else:
        number = float(value) if abs(value) < LARGEST_REWARD else math.nan
    if not math.isfinite(number):
        raise Invalid(RejectReason.INVALID_REWARD, f"reward {value!r} is not a finite number")
    return sign * number


def prompt_id(value: object, name: str) -> str:
    if value is None or value == "" or isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Invalid(RejectReason.MISSING_ID, f"'{name}' holds no usable id: {value!r}")
    return encodable(str(value), name)


def turn(value: object, role_key: str, text_key: str, name: str) -> Message:
    """One chat turn, under the keys given or, when those are absent, ShareGPT's from/value."""
    if isinstance(value, dict) and role_key not in value and all(key in value for key in SHAREGPT_KEYS):
        role_key, text_key = SHAREGPT_KEYS
    if not (isinstance(value, dict) and isinstance(value.get(role_key), str) and isinstance(value.get(text_key), str)):
        raise Invalid(RejectReason.INVALID_MESSAGES, f"{name} lacks a string '{role_key}' and '{text_key}'")
    role = encodable(value[role_key], f"{name}.{role_key}")
    return Message(
        ROLE_ALIASES.get(role.lower(), role), normalize_text(encodable(value[text_key], f"{name}.{text_key}"))
    )


def split_chat(
    value: object, name: str, role_key: str = "role", text_key: str = "content"
) -> tuple[str, tuple[Message, ...], str]:
    """The last assistant turn is the response; the turns before it (system included) are the prompt."""
    if not isinstance(value, list) or not value:
        raise Invalid(RejectReason.INVALID_MESSAGES, f"'{name}' is not a non-empty list of turns")
    turns = [turn(item, role_key, text_key, f"turn {index}") for index, item in enumerate(value)]
    last_assistant = max((i for i, message in enumerate(turns) if message.role == "assistant"), default=None)
    if last_assistant is None:
        raise Invalid(RejectReason.INVALID_MESSAGES, "no assistant turn")
    prompt_turns = tuple(turns[:last_assistant])
    completion = turns[last_assistant].content
    if not completion:
        raise Invalid(RejectReason.EMPTY_RESPONSE, "the last assistant turn is blank")
    if not any(message.content for message in prompt_turns):
        raise Invalid(RejectReason.EMPTY_PROMPT, "no non-blank turn before the last assistant turn")
    return render_turns(prompt_turns), prompt_turns + (turns[last_assistant],), completion


def is_transcript(value: object) -> bool:
    return isinstance(value, str) and value.lstrip("\n").startswith("Human:")


def _transcript_turns(text: str) -> list[tuple[str, str]]:
    """(role, text) of each Human:/Assistant: turn of a transcript that starts with its first marker."""
    parts = _TRANSCRIPT_TURN.split("\n\n" + text)
    return [(ROLE_ALIASES[role.lower()], content) for role, content in zip(parts[1::2], parts[2::2])]


def split_transcript(text: str, name: str) -> tuple[str, tuple[Message, ...], str]:
    """A whole Human:/Assistant: transcript as chat turns, split as the chat layout splits them."""
    return split_chat(
        [{"role": role, "content": content} for role, content in _transcript_turns(text.lstrip("\n"))], name
    )


def transcript_prompt(text: str) -> tuple[Message, ...] | None:
    """A prompt written as a transcript awaiting the assistant (Nectar, HH-RLHF: "Human: ...\n\nAssistant:"),
    as its chat turns; None for any other prompt. Both ends must match, so ordinary text that merely
    begins with "Human:" stays as it is."""
    if not (text.startswith("Human:") and text.endswith("\n\nAssistant:")):
        return None
    turns = tuple(
        Message(role, normalize_text(content))
        for role, content in _transcript_turns(text.removesuffix("\n\nAssistant:"))
    )
    return turns if any(turn.content for turn in turns) else None


def render_turns(turns: tuple[Message, ...]) -> str:
    if len(turns) == 1 and turns[0].role == "user":
        return turns[0].content
    return "\n\n".join(f"{message.role}: {message.content}" for message in turns)


def chat_identity(prompt_turns: tuple[Message, ...]) -> str:
    return json.dumps([[message.role, identity_key(message.content)] for message in prompt_turns])
