"""Checks made on the driver before a job starts, so that a bad pattern, file or field mapping
fails in one line instead of halfway through a job."""

from __future__ import annotations

import os

from apache_beam.io.filesystems import FileSystems

from mrtcurate.errors import UserError
from mrtcurate.ingest.files import ResolvedInputs, is_local, local_path, within_deadline
from mrtcurate.ingest.probe import holds_turns, resolve_mapping
from mrtcurate.pipeline.graph import needs_embeddings
from mrtcurate.pipeline.score import scorer_identity
from mrtcurate.schemas import InputFile, RunConfig
from mrtcurate.selectors import SELECTORS
from mrtcurate.vectors.embedders import prepare_embedder


def resolve_inputs(config: RunConfig) -> ResolvedInputs:
    """The inputs matched and probed and the mapping checked first: a wrong pattern or field fails in a second,
    before an embedder artifact is built (minutes, the first time on a machine)."""
    files, probed, mapping = resolve_mapping(config.ingest, config.planner.feature_column)
    spec = SELECTORS[config.selection.selector]
    if spec.needs_rewards and mapping.reward is None and mapping.layout != "pairs" and not config.scoring.scorer:
        raise UserError(
            f"--selector {spec.name} ranks by reward: pass --reward-field with the field that holds it, --reward-model or --judge-url"
        )
    with_messages = mapping.layout in ("chat", "tree") or any(
        holds_turns(record, mapping) for records in probed.values() for record in records
    )
    if config.scoring.scorer:
        scorer_identity(config.scoring)  # a wrong model, URL or template fails now, in one line
    if needs_embeddings(config):
        prepare_embedder(config.embedding.embedder)
    return ResolvedInputs(tuple(files), mapping, with_messages)


def check_output(output: str, overwrite: bool) -> None:
    """Refuse, before any work, to replace what the user did not ask us to replace."""
    if is_local(output):
        # Asked of the path as given: the resolved path is never a link.
        if os.path.islink(output.removeprefix("file://").rstrip("/")):
            raise UserError(f"output {output} is a symbolic link; give the directory it points to")
        path = local_path(output)
        working = os.path.realpath(os.getcwd())
        if path == working or working.startswith(path.rstrip("/") + "/") or path == "/":
            # Publishing renames the output aside and the new one in: the working directory cannot be renamed.
            raise UserError(
                f"output {output} is the working directory or holds it; give a subfolder, e.g. --output {output.rstrip('/')}/curated"
            )
        if os.path.lexists(path) and not os.path.isdir(path):
            # A file is never replaced by a dataset directory, --overwrite or not: that flag replaces datasets.
            raise UserError(
                f"output {output} is a file, not a directory; choose another --output (nothing was changed)"
            )
        non_empty = os.path.isdir(path) and any(os.scandir(path))
        ancestor = _nearest_existing(path)
        if not os.path.isdir(ancestor):
            raise UserError(f"cannot write to output location {output}: {ancestor} is a file, not a directory")
        _check_name_lengths(output, path, ancestor)
    else:
        non_empty = within_deadline(lambda: _remote_non_empty(output), output)
    if non_empty and not overwrite:
        raise UserError(f"output {output} is not empty; pass --overwrite to replace it")


def _check_name_lengths(output: str, path: str, ancestor: str) -> None:
    """Asked now: the file system would refuse the name at the publishing rename, after the whole job."""
    longest_name, longest_path = os.pathconf(ancestor, "PC_NAME_MAX"), os.pathconf(ancestor, "PC_PATH_MAX")
    too_long = next((part for part in path.split("/") if len(part.encode()) > longest_name), None)
    if too_long is not None:
        raise UserError(
            f"output {output}: the name {too_long[:40]}... is {len(too_long.encode())} bytes; this file system allows {longest_name}"
        )
    if len(path.encode()) >= longest_path:
        raise UserError(
            f"output {output} is {len(path.encode())} bytes long; this file system allows paths under {longest_path}"
        )


def _remote_non_empty(output: str) -> bool:
    return (
        bool(FileSystems.match([output.rstrip("/") + "/**"])[0].metadata_list) if FileSystems.exists(output) else False
    )


def check_inputs_outside_output(output: str, files: tuple[InputFile, ...]) -> None:
    """No --overwrite may delete an input: an output that is or holds an input's directory is refused."""
    for file in files:
        if _within(file.path, output):
            raise UserError(
                f"output {output} holds input {file.path}; writing there would delete it: choose another --output"
            )


def check_cache_and_budget(config: RunConfig) -> None:
    output = config.publish.output
    if (cache := config.publish.cache) and _within(cache, output):
        raise UserError(
            f"--cache {cache} is inside output {output}: publishing replaces the output, and the cache with it; "
            "choose a folder outside it"
        )
    if config.scoring.judge_budget is not None and not is_local(output):
        raise UserError(
            "--judge-budget needs a local --output: the workers share their count of requests in a file they lock there"
        )


def _within(path: str, folder: str) -> bool:
    if is_local(path) != is_local(folder):
        return False
    root = local_path(folder) if is_local(folder) else folder.rstrip("/")
    path = local_path(path) if is_local(path) else path.rstrip("/")
    return path == root or path.startswith(root.rstrip("/") + "/")


def _nearest_existing(path: str) -> str:
    while not os.path.lexists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path
