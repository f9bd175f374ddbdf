"""What the job learns from the inputs before it runs, and `mrt inspect` shows: the matched files, the
records at each one's head, the layout they agree on, and the field mapping checked against them (a field
no record offers is a one-line error naming the fields there are and the preset that would read them)."""

from __future__ import annotations

import glob
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import replace
from itertools import islice

from apache_beam.io.filesystem import FileMetadata
from apache_beam.io.filesystems import FileSystems

from mrtcurate.errors import UserError
from mrtcurate.ids import normalize_text
from mrtcurate.ingest import hub, paths
from mrtcurate.ingest.fields import is_transcript, transcript_prompt
from mrtcurate.ingest.files import checksum, is_local, open_binary, within_deadline
from mrtcurate.ingest.formats import RawRecord, csv_header, format_for_path, iter_records
from mrtcurate.ingest.layouts import FieldMapping, detect_layout, to_units
from mrtcurate.schemas import Candidate, InputFile, TreeMessage
from mrtcurate.schemas.config import IngestSettings
from mrtcurate.schemas.presets import PRESETS

log = logging.getLogger(__name__)

# Records read from the head of every input file to detect the layout and check the mapping.
_PROBE_RECORDS = 50


def holds_turns(record: RawRecord, mapping: FieldMapping) -> bool:
    """Whether a record's candidates carry chat turns: message-list or transcript pairs, transcript prompts."""
    if mapping.layout == "pairs":
        side = paths.parse(mapping.chosen).get(record.fields)
        return isinstance(side, list) or is_transcript(side)
    if mapping.layout in ("flat", "grouped") and mapping.prompt_template is None:
        prompt = paths.parse(mapping.prompt).get(record.fields)
        return isinstance(prompt, str) and transcript_prompt(normalize_text(prompt)) is not None
    return False


def resolve_mapping(
    ingest: IngestSettings, feature: str | None = None, fingerprint: bool = True
) -> tuple[list[InputFile], dict[str, list[RawRecord]], FieldMapping]:
    """The matched files, the records probed at each one's head, and the mapping checked against them:
    what `mrt run` parses with, and what `mrt inspect` shows (without fingerprints, which read whole
    local files)."""
    files = _match_files(ingest, fingerprint)
    probed = {file.path: _probe(file, ingest.max_chars) for file in files}
    layout = ingest.layout if ingest.layout != "auto" else _agreed_layout(probed, field_mapping(ingest, "auto"))
    mapping = field_mapping(ingest, layout, feature)
    _check_fields(files, probed, mapping)
    if feature is not None:
        if mapping.layout not in ("flat", "chat"):
            raise UserError("--feature-column works with the flat and chat layouts")
        mapping = replace(mapping, feature_dim=_feature_dim(probed, feature))
    return files, probed, mapping


def field_mapping(ingest: IngestSettings, layout: str, feature: str | None = None) -> FieldMapping:
    try:
        return FieldMapping.from_settings(ingest, layout, feature)
    except ValueError as error:
        raise UserError(str(error)) from None


def _match_files(ingest: IngestSettings, fingerprint: bool = True) -> list[InputFile]:
    """Every matched file once, in pattern order: overlapping patterns, or a symbolic link beside the file it
    names, must not double multiplicities. A file keeps the first spelling that matched it."""
    files: dict[str, InputFile] = {}
    for pattern in ingest.input:
        for metadata, origin, origin_checksum in _hub_files(pattern) if hub.is_hub(pattern) else _plain_files(pattern):
            identity = os.path.realpath(metadata.path) if is_local(metadata.path) else metadata.path
            if identity in files:
                log.info("%s is %s, matched already; it is read once", metadata.path, files[identity].path)
                continue
            fmt = _format(ingest, metadata.path)
            files[identity] = InputFile(
                metadata.path,
                fmt,
                metadata.size_in_bytes,
                _checksum(metadata) if fingerprint else "",
                origin,
                origin_checksum,
            )
    return list(files.values())


def _plain_files(pattern: str) -> list[tuple[FileMetadata, None, None]]:
    return [(metadata, None, None) for metadata in sorted(_match(pattern), key=lambda metadata: metadata.path)]


def _hub_files(pattern: str) -> list[tuple[FileMetadata, str, str]]:
    found = []
    for file in hub.resolve(pattern):
        status = os.stat(file.local_path)
        found.append((FileMetadata(file.local_path, status.st_size, status.st_mtime), file.origin, file.checksum))
    return found


def _agreed_layout(probed: dict[str, list[RawRecord]], mapping: FieldMapping) -> str:
    """Each probed record votes; files or records that disagree are refused, since guessing one layout
    would reject every record of the others."""
    seen: dict[str, dict[str, list[int]]] = {}
    for path, records in probed.items():
        for record in records:
            seen.setdefault(path, {}).setdefault(detect_layout(record.fields, mapping), []).append(record.row)
    layouts = {layout for by_layout in seen.values() for layout in by_layout}
    if len(layouts) > 1:
        found = "; ".join(
            f"{path}: "
            + ", ".join(
                f"{layout} ({len(rows)} of the first records, e.g. row {rows[0]})"
                for layout, rows in sorted(by_layout.items())
            )
            for path, by_layout in seen.items()
        )
        raise UserError(
            f"inputs disagree on the record layout ({found}); pass --layout flat|grouped|chat|pairs, or run them separately"
        )
    return layouts.pop() if layouts else "flat"


def _feature_dim(probed: dict[str, list[RawRecord]], column: str) -> int:
    for records in probed.values():
        for record in records:
            if isinstance(record.fields.get(column), list) and record.fields[column]:
                return len(record.fields[column])
    raise UserError(f"--feature-column '{column}' holds no list of numbers in the first records")


def _match(pattern: str):
    # Local patterns are made absolute: Beam matches a bare relative glob ("*.jsonl") to nothing, and one
    # spelling per file lets overlapping patterns ("a.jsonl", "./*.jsonl") be recognised as the same file.
    absolute = os.path.abspath(pattern.removeprefix("file://")) if is_local(pattern) else pattern
    if is_local(pattern):
        results = _match_local(pattern, absolute)
    else:
        results = within_deadline(lambda: FileSystems.match([absolute])[0].metadata_list, pattern)
    matched = [metadata for metadata in results if not metadata.path.endswith("/")]
    if not matched:
        raise UserError(f"input pattern {pattern} matches no file")
    return matched


def _match_local(pattern: str, absolute: str) -> list[FileMetadata]:
    """Local files by Python's glob, not Beam's: Beam's pattern translation skips names that hold a backslash.
    Only regular files are inputs: opening a FIFO blocks forever, and a device or socket is no corpus."""
    # Hidden names match too, as they did under Beam's own matching.
    paths = sorted(glob.glob(absolute, recursive=True, include_hidden=True)) if glob.has_magic(absolute) else [absolute]
    found = []
    for path in paths:
        try:
            status = os.stat(path)
        except OSError as error:
            if not glob.has_magic(absolute):
                return []  # a plain path that does not exist: "matches no file" below
            raise UserError(f"cannot list input {pattern}: {error}") from None
        if stat.S_ISDIR(status.st_mode):
            continue
        if not stat.S_ISREG(status.st_mode):
            raise UserError(f"input {path} is not a regular file (a FIFO, device or socket); inputs must be files")
        found.append(FileMetadata(path, status.st_size, status.st_mtime))
    return found


def _format(ingest: IngestSettings, path: str) -> str:
    if ingest.format != "auto":
        return ingest.format
    try:
        return format_for_path(path)
    except ValueError as error:
        raise UserError(str(error)) from None


def _checksum(metadata) -> str:
    try:
        return checksum(metadata.path, metadata.size_in_bytes, metadata.last_updated_in_seconds)
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - Beam wraps each backend's errors in its own types
        raise UserError(f"cannot read input file {metadata.path}: {error}") from None


def _probe(file: InputFile, max_chars: int) -> list[RawRecord]:
    with open_binary(file.path) as stream:
        records = iter_records(stream, file.format, file.path, max_chars)
        return [record for record in islice(records, _PROBE_RECORDS) if isinstance(record, RawRecord)]


def _fields_of(file: InputFile, records: list[RawRecord]) -> set[str]:
    """The field names a file offers: a CSV's header, whatever its first rows hold (a wrong delimiter then
    fails here instead of rejecting every row); otherwise the keys of its probed records."""
    if file.format == "csv":
        with open_binary(file.path) as stream:
            header = csv_header(stream, file.path)
        if repeated := sorted({name for name in header if header.count(name) > 1}):
            # A dict per row would keep the last of the columns silently.
            raise UserError(
                f"{file.path}: the CSV header names {', '.join(repr(name) for name in repeated)} more than once; rename the columns"
            )
        return set(header)
    return {field for record in records for field in record.fields}


def _offers(file: InputFile, records: list[RawRecord], names: set[str]) -> Callable[[str], bool] | None:
    """Whether a file offers a field path: a CSV by its header names, otherwise by some probed record
    resolving it. None when there is nothing to check against (no readable record at the file's head)."""
    if not names:
        return None
    if file.format == "csv":
        return lambda path: path in names
    return lambda path: any(_resolves(paths.parse(path), record.fields) for record in records)


def _resolves(path: paths.FieldPath, fields: dict) -> bool:
    try:
        found = path.fan(fields) if path.fans_out else path.get(fields)
    except paths.PathError:
        return False  # an empty list, or no list, shows nothing of the fields under the [*]
    return found is not paths.MISSING and not (
        isinstance(found, list) and path.fans_out and all(item is paths.MISSING for item in found)
    )


def _check_fields(files: list[InputFile], probed: dict[str, list[RawRecord]], mapping: FieldMapping) -> None:
    """A field the layout needs must be offered by every file (else all of that file's records would be
    rejected); an optional one (reward, id, ...) by at least one, else it is a typo in the mapping."""
    names = {file.path: _fields_of(file, probed[file.path]) for file in files}
    offers = {file.path: _offers(file, probed[file.path], names[file.path]) for file in files}

    def unknown(option: str, field: str, file: InputFile) -> UserError:
        return UserError(_unknown_field(option, field, file, probed[file.path], names[file.path], mapping))

    for option, field in mapping.layout_fields():
        for file in files:
            if offers[file.path] is not None and not offers[file.path](field):
                raise unknown(option, field, file)
    checkable = [file for file in files if offers[file.path] is not None]
    for option, field in mapping.optional_fields():
        if checkable and not any(offers[file.path](field) for file in checkable):
            raise unknown(option, field, checkable[0])


def _unknown_field(
    option: str, field: str, file: InputFile, records: list[RawRecord], offered: set[str], mapping: FieldMapping
) -> str:
    flag = "--" + option.replace("_", "-")
    path = paths.parse(field)
    if file.format != "csv" and len(path.steps) > 1 and records:
        where = path.missing_detail(records[0].fields)
    else:
        where = "its fields: " + ", ".join(sorted(ascii(name)[1:-1] for name in offered)[:20])
    hint = ""
    if file.format == "csv" and len(offered) == 1 and any(mark in next(iter(offered)) for mark in "\t;|,"):
        hint = "; the header is one column: is the delimiter right? (.csv is read with ',' and .tsv with a tab)"
    elif fitting := _fitting_presets(records, file.path):
        hint = "; " + " or ".join(f"--preset {name}" for name in fitting) + " reads candidates from them"
    return f"{flag} '{field}' {'is not a field of' if len(path.steps) == 1 else 'leads nowhere in the first records of'} {file.path} (layout {mapping.layout}; {where}){hint}"


def _fitting_presets(records: list[RawRecord], source_file: str) -> list[str]:
    """The presets that make candidates of a file's first records, parsed as the job would."""
    fitting = []
    for name, preset in PRESETS.items():
        settings = IngestSettings(input=["-"], **preset.options)
        mapping = field_mapping(settings, settings.layout)
        units = (unit for record in records for unit in to_units(record, mapping, source_file))
        if any(isinstance(unit, (Candidate, TreeMessage)) for unit in units):
            fitting.append(name)
    return fitting
