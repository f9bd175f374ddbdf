"""`mrt inspect`: what the job would make of the first records of each input, in seconds, by the job's
own code (preflight's mapping checks, the format readers, the layouts), so a mapping can be got right
before a long run. Not polars for the Parquet and CSV heads: the point is the job's own parsing, and
its readers already stop after the first row group or lines asked for."""

from __future__ import annotations

from collections import Counter
from itertools import islice

from mrtcurate.ingest.files import open_binary
from mrtcurate.ingest.formats import RawRecord, iter_records
from mrtcurate.ingest.layouts import FieldMapping, to_units
from mrtcurate.ingest.probe import resolve_mapping
from mrtcurate.ingest.trees import rows_in_memory
from mrtcurate.schemas import Candidate, TreeMessage
from mrtcurate.schemas.config import IngestSettings
from mrtcurate.schemas.counts import UnitTally

EXAMPLES = 3
_LAYOUT_KEYS = {
    "chat": ("role_key", "text_key"),
    "tree": ("role_key", "text_key", "replies_field", "keep_deleted"),
}


def inspect(ingest: IngestSettings, records_per_file: int = 200) -> dict:
    files, _, mapping = resolve_mapping(ingest, fingerprint=False)
    candidates: list[Candidate] = []
    tally = UnitTally()
    read = 0
    for file in files:
        rows: list[TreeMessage] = []
        with open_binary(file.path) as stream:
            for item in islice(iter_records(stream, file.format, file.path, ingest.max_chars), records_per_file):
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


def _count(unit, tally: UnitTally, candidates: list[Candidate]) -> None:
    tally.add(unit)
    if isinstance(unit, Candidate):
        candidates.append(unit)


def effective_mapping(ingest: IngestSettings, mapping: FieldMapping) -> dict:
    """The options the parser reads in this layout, as the user would write them."""
    options = dict(mapping.paths())
    if mapping.reward or mapping.layout == "pairs":
        options["reward_order"] = mapping.reward_order
    if mapping.layout == "tree" and mapping.reward:
        options["reward_field"] = mapping.reward
    for option in _LAYOUT_KEYS.get(mapping.layout, ()):
        if not (option == "replies_field" and mapping.message_rows):
            options[option] = getattr(ingest, option)
    return options
