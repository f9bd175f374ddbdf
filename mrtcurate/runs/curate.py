"""One curation run on the driver: validate everything up front, run the Beam job into staging, write
the report there, publish atomically. `mrt plan` runs the shared front half alone."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from mrtcurate.errors import JobFailed, UserError
from mrtcurate.ingest.files import ResolvedInputs
from mrtcurate.interrupts import made_and_undone_on_interrupt, temporary_folder
from mrtcurate.pipeline.launch import run_curation, run_planner
from mrtcurate.pipeline.score import JUDGE_LEDGER
from mrtcurate.pipeline.spill import SPILL_FOLDER
from mrtcurate.report import REPORT_NAME, write_card, write_report
from mrtcurate.runs.preflight import check_cache_and_budget, check_inputs_outside_output, check_output, resolve_inputs
from mrtcurate.runs.publish import publish, release, stage
from mrtcurate.schemas import RunConfig
from mrtcurate.schemas.manifest import read_manifest


@dataclass(frozen=True)
class RunOutcome:
    output: str
    manifest: dict
    metrics: dict[str, int]
    report: str


def run(
    config: RunConfig,
    beam_args: list[str] | None = None,
    inputs: ResolvedInputs | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Validate, run the job, write the report, publish. Raises UserError for bad input, config or output
    location before any work starts; on any failure or interrupt nothing is published and staging is removed.
    `on_progress` receives a progress line every few seconds while a local job runs."""
    output, overwrite = config.publish.output, config.publish.overwrite
    if not output:
        raise UserError("--output is required")
    check_output(output, overwrite)
    inputs = inputs or resolve_inputs(config)
    check_inputs_outside_output(output, inputs.files)
    check_cache_and_budget(config)
    with made_and_undone_on_interrupt(lambda: stage(output, overwrite), release) as staging:
        try:
            metrics = run_curation(config, inputs, staging.directory, beam_args or [], on_progress)
            _remove_if_there(FileSystems.join(staging.directory, JUDGE_LEDGER))
            _remove_if_there(FileSystems.join(staging.directory, SPILL_FOLDER))
            manifest = read_manifest(staging.directory)
            if manifest["counts"]["candidates"] == 0 and not config.publish.allow_empty:
                raise JobFailed(_nothing_curated(manifest))
            # Inside staging, so a published dataset always has its report and card.
            write_report(staging.directory)
            write_card(staging.directory, config.publish.license)
            publish(staging)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            raise JobFailed(
                f"the disk filled up while writing {error.filename or output}; nothing was published"
            ) from None
        finally:
            release(staging)  # while still registered: an interrupt here releases it again, harmlessly
    return RunOutcome(output, manifest, metrics, FileSystems.join(output, REPORT_NAME))


def _remove_if_there(path: str) -> None:
    if FileSystems.exists(path):
        FileSystems.delete([path])


def _nothing_curated(manifest: dict) -> str:
    counts, reasons = manifest["counts"], manifest["rejected_by_reason"]
    top = ", ".join(f"{reason} {count:,}" for reason, count in sorted(reasons.items(), key=lambda item: -item[1])[:3])
    why = f"every one was rejected ({top})" if reasons else "the mapping made none"
    return (
        f"no candidate came out of {counts['input_records']:,} input records: {why}; nothing was published. "
        "Check the field mapping with `mrt inspect`, or pass --allow-empty to publish an empty dataset"
    )


def run_plan(config: RunConfig, beam_args: list[str] | None = None) -> dict:
    """The planner alone: read, dedup, embed and estimate, without selecting or writing a dataset."""
    config = config.replace(plan=True)
    inputs = resolve_inputs(config)
    with temporary_folder("mrt-plan-") as scratch:
        target = os.path.join(scratch, "plan.json")
        run_planner(config, inputs, target, beam_args or [])
        with open(target, encoding="utf-8") as source:
            return json.loads(source.read())
