"""The flat and grouped layouts read a block of records at a time: the texts of a block become Arrow columns,
normalised, keyed and hashed column by column, instead of each record walking `layouts.to_units`.

The per-record parser stays the authority. A record goes through it unchanged wherever the columns could say
something else: a field that is not a plain ASCII string (NFC and Python's `str.strip` are then exactly Arrow's
ASCII trim), a control character that Python counts as whitespace and Arrow does not (\\x1c-\\x1f), a text that
is blank, a prompt written as a Human:/Assistant: transcript, a reward that is not a plain number, an id or a
source that is not a plain string, a grouped record whose responses or rewards are not plain lists of these.
tests/ingest/test_columnar.py checks that both give the same units, record by record, on fuzzed input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from mrtcurate.ids import stable_ids
from mrtcurate.ingest import paths
from mrtcurate.ingest.fields import LARGEST_REWARD
from mrtcurate.ingest.formats import RawRecord
from mrtcurate.ingest.layouts import FieldMapping, to_units
from mrtcurate.schemas import Candidate
from mrtcurate.schemas.records import candidate_of

BLOCK_RECORDS = 2_048  # records read into one block of columns
_MISSING = object()
_PYTHON_ONLY_SPACE = "[\x1c-\x1f]"  # whitespace to str.strip and str.split, not to Arrow's ASCII functions


def reads_by_column(mapping: FieldMapping) -> bool:
    """Whether this mapping's records can be read by column: the flat or grouped layout with every field a top-level
    key (a grouped record's responses, and their rewards, as plain lists under it)."""
    named = (mapping.prompt, mapping.response, mapping.reward, mapping.id, mapping.source)
    return (
        mapping.layout in ("flat", "grouped")
        and mapping.prompt_template is None
        and mapping.feature is None
        and mapping.finish_reason is None
        and all(name is None or paths.parse(name).steps == (name,) for name in named)
    )


def block_units(records: Sequence[RawRecord], mapping: FieldMapping, source_file: str) -> list[list]:
    """Each record's units, as `to_units` gives them, in record order."""
    default_source = source_file.rsplit("/", 1)[-1]
    grouped = mapping.layout == "grouped"
    spans, values = [], []  # per record: (start, end) of its rows in `values`, or None for the per-record parser
    for record in records:
        rows = _plain_rows(record.fields, mapping, default_source, grouped)
        if rows is None:
            spans.append(None)
            continue
        spans.append((len(values), len(values) + len(rows)))
        values.extend(rows)
    candidates = _candidates(values, mapping) if values else []
    units: list[list] = []
    for record, span in zip(records, spans):
        taken = None if span is None else candidates[span[0] : span[1]]
        # One row the columns leave to the parser sends its whole record there, so that its units keep their order.
        if taken is None or None in taken:
            taken = list(to_units(record, mapping, source_file))
        units.append(taken)
    return units


def _plain_rows(fields: dict, mapping: FieldMapping, default_source: str, grouped: bool) -> list[tuple] | None:
    """(prompt, response, reward, id, source) of each of the record's responses where every value is plain enough
    for the columns, else None."""
    prompt, response = fields.get(mapping.prompt, _MISSING), fields.get(mapping.response, _MISSING)
    if type(prompt) is not str or not prompt.isascii():
        return None
    responses = response if grouped else [response]
    if type(responses) is not list or not responses:
        return None
    if not all(type(text) is str and text.isascii() for text in responses):
        return None
    rewards = [None] * len(responses)
    if mapping.reward is not None and fields.get(mapping.reward) is not None:
        rewards = fields[mapping.reward] if grouped else [fields[mapping.reward]]
        if type(rewards) is not list or len(rewards) != len(responses):
            return None
        if not all(value is None or _plain_number(value) for value in rewards):
            return None
    prompt_id = None
    if mapping.id is not None:
        prompt_id = fields.get(mapping.id)
        if type(prompt_id) is int:
            prompt_id = str(prompt_id)
        elif type(prompt_id) is not str or not prompt_id or not prompt_id.isascii():
            return None
    source = default_source
    if mapping.source is not None:
        value = fields.get(mapping.source)
        if value is not None and value != "":
            if type(value) is not str or not value.isascii():
                return None
            source = value
    return [(prompt, text, reward, prompt_id, source) for text, reward in zip(responses, rewards)]


def _plain_number(value: object) -> bool:
    return type(value) in (int, float) and abs(value) < LARGEST_REWARD and math.isfinite(value)


def _candidates(values: list[tuple], mapping: FieldMapping) -> list[Candidate | None]:
    """The candidate of each row, or None for a row the per-record parser must read after all."""
    prompts_raw, responses_raw, rewards, prompt_ids, sources = zip(*values)
    prompts_raw, responses_raw = pa.array(prompts_raw, pa.string()), pa.array(responses_raw, pa.string())
    prompts, responses = pc.ascii_trim_whitespace(prompts_raw), pc.ascii_trim_whitespace(responses_raw)
    python_only = pc.or_(
        pc.match_substring_regex(prompts_raw, _PYTHON_ONLY_SPACE),
        pc.match_substring_regex(responses_raw, _PYTHON_ONLY_SPACE),
    )
    # transcript_prompt's test, on the stripped prompt: such a prompt is rendered from its turns.
    transcript = pc.and_(pc.starts_with(prompts, "Human:"), pc.ends_with(prompts, "\n\nAssistant:"))
    blank = pc.or_(pc.equal(pc.utf8_length(prompts), 0), pc.equal(pc.utf8_length(responses), 0))
    by_row = pc.or_(pc.or_(python_only, transcript), blank).to_pylist()
    response_ids = stable_ids(pc.binary_join(pc.ascii_split_whitespace(responses), " ").to_pylist())
    # A prompt's id is the hash of its text only where no --id-field gives it.
    prompt_hashes = (
        stable_ids(pc.binary_join(pc.ascii_split_whitespace(prompts), " ").to_pylist()) if mapping.id is None else None
    )
    return [
        None
        if by_row[index]
        else candidate_of(
            (
                prompt_hashes[index] if prompt_ids[index] is None else prompt_ids[index],
                response_ids[index],
                prompt,
                response,
                None if rewards[index] is None else mapping.reward_sign * float(rewards[index]),
                sources[index],
                None,  # messages
                1,  # multiplicity
                None,  # feature
                (),  # origins: set by the read, which knows the row
            )
        )
        for index, (prompt, response) in enumerate(zip(prompts.to_pylist(), responses.to_pylist()))
    ]
