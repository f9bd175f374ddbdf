"""Stable reject reason codes: users filter and count on these, so they never change meaning."""

from enum import Enum


class RejectReason(str, Enum):
    INVALID_UTF8 = "invalid_utf8"
    INVALID_UNICODE = "invalid_unicode"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    TRUNCATED_GZIP = "truncated_gzip"
    NOT_GZIP = "not_gzip"
    UNREADABLE_FILE = "unreadable_file"
    CSV_COLUMN_COUNT = "csv_column_count"
    INVALID_CSV = "invalid_csv"
    RECORD_TOO_LARGE = "record_too_large"
    MISSING_PROMPT = "missing_prompt"
    MISSING_RESPONSE = "missing_response"
    MISSING_ID = "missing_id"
    PROMPT_NOT_STRING = "prompt_not_string"
    RESPONSE_NOT_STRING = "response_not_string"
    EMPTY_PROMPT = "empty_prompt"
    EMPTY_RESPONSE = "empty_response"
    TRUNCATED_RESPONSE = "truncated_response"  # the generator stopped at its length limit (--finish-reason-field)
    INVALID_REWARD = "invalid_reward"
    REWARD_LENGTH_MISMATCH = "reward_length_mismatch"
    INVALID_MESSAGES = "invalid_messages"
    INVALID_FEATURE = "invalid_feature"
    NOT_A_LIST = "not_a_list"  # a `[*]` path over something that is not a list
    EMPTY_LIST = "empty_list"  # a `[*]` path over an empty list
    MISSING_TEMPLATE_FIELD = "missing_template_field"  # --prompt-template names a field the record lacks
    MISSING_PARENT = "missing_parent"  # tree layout: a message whose parent (or an ancestor's) is not in the input
    DUPLICATE_MESSAGE_ID = "duplicate_message_id"  # tree layout: a second message with an id already taken
    NO_ROOT = (
        "no_root"  # tree layout: no root above a message within the levels the join follows (a parent cycle, or deeper)
    )
    DELETED_MESSAGE = "deleted_message"  # tree layout: deleted, or below a deleted message (--keep-deleted keeps them)
    FAILED_REVIEW = "failed_review"  # tree layout: review_result false, or below such a message
    UNEMBEDDABLE_TEXT = (
        "unembeddable_text"  # no usable vector and no character the job can read (only controls, format marks...)
    )
    BOILERPLATE_RESPONSE = "boilerplate_response"  # one text answering many distinct prompts (--boilerplate-prompts)


class DropReason(str, Enum):
    """Why a parsed response is not in data/ (its row in dropped/)."""

    EXACT_DUPLICATE = "exact_duplicate"  # copies of a response under the same prompt: one row, records = copies
    NEAR_DUPLICATE = "near_duplicate"  # merged into a near-identical response of its pool
    NOT_SELECTED = "not_selected"  # in the pool, not among the K kept
