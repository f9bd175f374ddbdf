"""`mrt inspect`: what the job would make of a sample of each input, in seconds, by the job's own code
(preflight's mapping checks, the format readers, the layouts), so a mapping can be got right before a
long run. Not polars for the Parquet and CSV heads: the point is the job's own parsing.

The sample is spread across each JSONL file, so a file sorted by model or by prompt does not look like
one response per prompt: windows at evenly spaced byte offsets of a plain file, at evenly spaced line numbers of a compressed one
(two streaming passes, bounded by SPREAD_BUDGET_BYTES of text). CSV rows
may span lines and message-per-row trees need their rows together: those are sampled from the start."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import islice

from mrtcurate.ingest.files import open_binary
from mrtcurate.ingest.formats import (
    RawRecord,
    RowTally,
    TruncatedStream,
    decompressed_chunks,
    is_gzip_path,
    iter_lines,
    iter_records,
    jsonl_records,
    line_limit,
)
from mrtcurate.ingest.layouts import FieldMapping, to_units
from mrtcurate.ingest.probe import resolve_mapping
from mrtcurate.ingest.trees import rows_in_memory
from mrtcurate.schemas import Candidate, InputFile, TreeMessage
from mrtcurate.schemas.config import IngestSettings
from mrtcurate.schemas.counts import UnitTally

EXAMPLES = 3
WINDOWS = 10
SPREAD_BUDGET_BYTES = 1 << 30
_LAYOUT_KEYS = {
    "chat": ("role_key", "text_key"),
    "tree": ("role_key", "text_key", "replies_field", "keep_deleted"),
}


def inspect(ingest: IngestSettings, records_per_file: int = 200) -> dict:
    files, _, mapping = resolve_mapping(ingest, fingerprint=False)
    candidates: list[Candidate] = []
    tally = UnitTally()
    read = 0
    spread = []
    for file in files:
        rows: list[TreeMessage] = []
        with open_binary(file.path) as stream:
            records, how = _sample(stream, file, ingest.max_chars, records_per_file, mapping.message_rows)
            spread.append(how)
            for item in records:
                read += 1
                for unit in to_units(item, mapping, file.path) if isinstance(item, RawRecord) else [item]:
                    if isinstance(unit, TreeMessage):
                        rows.append(unit)
                    else:
                        _count(unit, tally, candidates)
        for unit in rows_in_memory(rows, mapping):
            _count(unit, tally, candidates)
    per_prompt = Counter(candidate.prompt_id for candidate in candidates)
    sizes = sorted(per_prompt.values())
    return {
        "files": [{"path": file.path, "format": file.format, "bytes": file.bytes} for file in files],
        "records_per_file": records_per_file,
        "sampled": spread,
        "layout": mapping.layout,
        "layout_detected": ingest.layout == "auto",
        "preset": ingest.preset,
        "mapping": effective_mapping(ingest, mapping),
        "sample": {
            "records": read,
            "candidates": len(candidates),
            "rejected": tally.rejected,
            "rejected_by_reason": dict(tally.reasons.most_common()),
            **({"context_messages": tally.context} if mapping.layout == "tree" else {}),
            "prompts": len(per_prompt),
            "responses_per_prompt": {"mean": len(candidates) / len(per_prompt), "min": sizes[0], "max": sizes[-1]}
            if sizes
            else None,
        },
        "examples": [
            {
                "prompt": c.prompt,
                "completion": c.completion,
                "reward": None if c.reward is None else mapping.reward_sign * c.reward,
            }
            for c in candidates[:EXAMPLES]
        ],
    }


def _sample(stream, file: InputFile, max_chars: int, count: int, keep_together: bool) -> tuple[Iterator, str]:
    if file.format != "jsonl" or keep_together:
        return islice(iter_records(stream, file.format, file.path, max_chars), count), "from the start"
    if is_gzip_path(file.path):
        return _spread_windows(stream, file.path, max_chars, count)
    per_window = -(-count // WINDOWS)
    starts = sorted({file.bytes * index // WINDOWS for index in range(WINDOWS)})

    def windows():
        # Each window ends where the next begins: a small file is read once, not ten times over.
        for start, end in zip(starts, [*starts[1:], None]):
            yield from islice(iter_records(stream, "jsonl", file.path, max_chars, (start, end), RowTally()), per_window)

    return islice(windows(), count), f"in {len(starts)} windows across the file"


def _spread_windows(stream, path: str, max_chars: int, count: int) -> tuple[Iterator, str]:
    """A compressed file cannot be entered at an offset: one streaming pass counts its lines, a second takes
    the windows at evenly spaced line numbers. Both passes stop at SPREAD_BUDGET_BYTES of text."""
    total, size = 0, 0
    for total, size in _line_ends(stream, path, max_chars):
        if size > SPREAD_BUDGET_BYTES:
            break
    stream.seek(0)
    per_window = -(-count // WINDOWS)
    starts = sorted({total * index // WINDOWS for index in range(WINDOWS)})
    wanted = {start + offset for start in starts for offset in range(per_window)}
    lines = (line for number, line in enumerate(_lines(stream, path, max_chars)) if number in wanted)
    read = f"the first {size >> 20:,} MB" if size > SPREAD_BUDGET_BYTES else "the file"
    return islice(
        jsonl_records(islice(lines, len(wanted)), path, max_chars), count
    ), f"in {len(starts)} windows drawn across {read}"


def _lines(stream, path: str, max_chars: int) -> Iterator[bytes]:
    try:
        yield from iter_lines(decompressed_chunks(stream, path), line_limit(max_chars))
    except TruncatedStream:
        return  # the sample is of what could be read; the job reports the break as a reject


def _line_ends(stream, path: str, max_chars: int) -> Iterator[tuple[int, int]]:
    size = 0
    for number, line in enumerate(_lines(stream, path, max_chars), start=1):
        size += len(line) + 1
        yield number, size


def _count(unit, tally: UnitTally, candidates: list[Candidate]) -> None:
    tally.add(unit)
    if isinstance(unit, Candidate):
        candidates.append(unit)


def effective_mapping(ingest: IngestSettings, mapping: FieldMapping) -> dict:
    """The options the parser reads in this layout, as the user would write them."""
    options = dict(mapping.paths())
    if mapping.prompt_template is not None and mapping.layout in ("flat", "grouped"):
        # paths() names each field the template reads; the option is the template itself.
        options = {
            "prompt_template": mapping.prompt_template,
            **{k: v for k, v in options.items() if k != "prompt_template"},
        }
    if mapping.reward or mapping.layout == "pairs":
        options["reward_order"] = mapping.reward_order
    if mapping.layout == "tree" and mapping.reward:
        options["reward_field"] = mapping.reward
    for option in _LAYOUT_KEYS.get(mapping.layout, ()):
        if not (option == "replies_field" and mapping.message_rows):
            options[option] = getattr(ingest, option)
    return options
