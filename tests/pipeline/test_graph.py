"""The job's graph as built (not run): what it costs any runner in shuffles."""

import json

from apache_beam.portability import common_urns

from mrtcurate.pipeline.graph import build
from mrtcurate.pipeline.launch import new_pipeline
from mrtcurate.runs.preflight import resolve_inputs
from mrtcurate.schemas import build_config


def _group_by_keys(tmp_path, **options) -> list[str]:
    paths = []
    for index in range(3):  # several files: the read spreads its parts over the workers with a reshuffle
        path = tmp_path / f"part-{index}.jsonl"
        path.write_text(json.dumps({"prompt": f"q{index}", "response": "a"}) + "\n", encoding="utf-8")
        paths.append(str(path))
    config = build_config({}, {"input": paths, "output": str(tmp_path / "out"), **options})
    pipeline = new_pipeline([])
    build(pipeline, config, resolve_inputs(config), str(tmp_path / "out"))
    transforms = pipeline.to_runner_api().components.transforms.values()
    return sorted(
        transform.unique_name
        for transform in transforms
        if not transform.subtransforms and transform.spec.urn == common_urns.primitives.GROUP_BY_KEY.urn
    )


def test_the_default_job_shuffles_six_times(tmp_path):
    """Issue 22: at most 6 GroupByKeys. The read's reshuffle of file parts, the boilerplate count's buckets, the pool
    buckets, the hot pools' parts, the one combine of summaries (the planner's sums and redundancy basis and qd's
    frontier offers in it) and the writer's shards; the small global counts are folded per bundle and merged where read."""
    shuffles = _group_by_keys(tmp_path)
    assert len(shuffles) == 6, shuffles
    assert len(_group_by_keys(tmp_path, selector="qd", embedder="hashing")) == 6
