"""Checks made on the driver before a job starts, so that a bad pattern, file or field mapping
fails in one line instead of halfway through a job."""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import islice

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from mrtcurate.errors import UserError
from mrtcurate.ids import stream_sha256
from mrtcurate.ingest.formats import RawRecord, format_for_path, iter_records
from mrtcurate.ingest.layouts import FieldMapping, detect_layout
from mrtcurate.schemas import RunConfig

# Records read from the head of each pattern's first file to detect the layout and check the mapping.
_PROBE_RECORDS = 50


@dataclass(frozen=True)
class InputFile:
    path: str
    format: str
    bytes: int
    checksum: str


@dataclass(frozen=True)
class ResolvedInputs:
    files: tuple[InputFile, ...]
    mapping: FieldMapping
    with_messages: bool


def open_binary(path: str):
    """A file's stored bytes. Gzip is unwrapped by the parser, not by Beam, so a truncated stream reaches
    it as a reject at a known row instead of ending the job."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def resolve_inputs(config: RunConfig) -> ResolvedInputs:
    files: list[InputFile] = []
    layouts: dict[str, str] = {}
    probe_mapping = _mapping(config, config.layout if config.layout != "auto" else "flat")
    probed: dict[str, list[RawRecord]] = {}
    for pattern in config.input:
        matched = sorted(_match(pattern), key=lambda metadata: metadata.path)
        for metadata in matched:
            fmt = _format(config, metadata.path)
            files.append(InputFile(metadata.path, fmt, metadata.size_in_bytes, _checksum(metadata.path)))
        records = _probe(files[-len(matched)], config.max_chars)
        if records:
            probed[pattern] = records
            layouts[pattern] = config.layout if config.layout != "auto" else detect_layout(records[0].fields, probe_mapping)
    if len(set(layouts.values())) > 1:
        found = ", ".join(f"{pattern}: {layout}" for pattern, layout in layouts.items())
        raise UserError(f"inputs have different layouts ({found}); run them separately or pass --layout")
    mapping = _mapping(config, next(iter(layouts.values()), "flat"))
    for pattern, records in probed.items():
        _check_fields(records, mapping, pattern)
    if config.feature_column is not None:
        if mapping.layout not in ("flat", "chat"):
            raise UserError("--feature-column works with the flat and chat layouts")
        mapping = replace(mapping, feature_dim=_feature_dim(probed, config.feature_column))
    if config.selector == "topk" and mapping.reward is None and mapping.layout != "pairs":
        raise UserError("--selector topk ranks by reward: pass --reward-field with the field that holds it")
    with_messages = mapping.layout == "chat" or (
        mapping.layout == "pairs" and any(isinstance(r.fields.get(mapping.chosen), list) for records in probed.values() for r in records)
    )
    return ResolvedInputs(tuple(files), mapping, with_messages)


def _mapping(config: RunConfig, layout: str) -> FieldMapping:
    return FieldMapping(
        layout=layout,
        prompt=config.prompt_field,
        response=config.response_field,
        reward=config.reward_field,
        id=config.id_field,
        source=config.source_field,
        messages=config.messages_field,
        chosen=config.chosen_field,
        rejected=config.rejected_field,
        feature=config.feature_column,
    )


def _feature_dim(probed: dict[str, list[RawRecord]], column: str) -> int:
    for records in probed.values():
        for record in records:
            if isinstance(record.fields.get(column), list) and record.fields[column]:
                return len(record.fields[column])
    raise UserError(f"--feature-column '{column}' holds no list of numbers in the first records")


def _match(pattern: str):
    try:
        results = FileSystems.match([pattern])[0].metadata_list
    except Exception as error:  # Beam wraps every backend's failure in its own error types
        raise UserError(f"cannot list input {pattern}: {error}") from None
    matched = [metadata for metadata in results if not metadata.path.endswith("/")]
    if not matched:
        raise UserError(f"input pattern {pattern} matches no file")
    return matched


def _format(config: RunConfig, path: str) -> str:
    if config.format != "auto":
        return config.format
    try:
        return format_for_path(path)
    except ValueError as error:
        raise UserError(str(error)) from None


def _checksum(path: str) -> str:
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
            return f"sha256:{stream_sha256(stream)}"
    except Exception as error:
        raise UserError(f"cannot read input file {path}: {error}") from None


def _probe(file: InputFile, max_chars: int) -> list[RawRecord]:
    with open_binary(file.path) as stream:
        records = iter_records(stream, file.format, file.path, max_chars)
        return [record for record in islice(records, _PROBE_RECORDS) if isinstance(record, RawRecord)]


def _check_fields(records: list[RawRecord], mapping: FieldMapping, pattern: str) -> None:
    """A mapped field must occur in at least one probed record: records missing it later become rejects,
    but a field that no record has is a typo in the mapping."""
    seen = {field for record in records for field in record.fields}
    for option, field in mapping.required_fields():
        if field not in seen:
            known = ", ".join(sorted(map(str, seen))[:20])
            flag = "--" + option.replace("_", "-")
            raise UserError(
                f"{flag} '{field}' is not a field of {pattern} (layout {mapping.layout}; its fields: {known})"
            )


def check_output(output: str, overwrite: bool) -> None:
    existing = FileSystems.match([output.rstrip("/") + "/*"])[0].metadata_list if FileSystems.exists(output) else []
    if existing and not overwrite:
        raise UserError(f"output {output} is not empty; pass --overwrite to replace it")
