"""The boilerplate count (pipeline/boilerplate.py): its threshold depends on the corpus's prompt count, which each
bundle counts and the buckets' stage merges; on the real runner, over several bundles, that count is the corpus's."""

import apache_beam as beam

from mrtcurate.ids import stable_id
from mrtcurate.pipeline.boilerplate import BoilerplateResponses
from mrtcurate.schemas.config import GroupingSettings
from mrtcurate.schemas.records import candidate_of
from tests.helpers import SEVERAL_BUNDLES, collect_to, collected, local_pipeline


def _candidate(prompt: str, response: str):
    return candidate_of((stable_id(prompt), stable_id(response), prompt, response, None, "s", None, 1, None, ()))


def test_the_auto_threshold_counts_every_bundles_prompts(tmp_path):
    # 40 prompts, so `auto` is a quarter of them: 10. A response answering 12 prompts is boilerplate; one answering 8
    # is not, though it would be against the prompts of any one bundle (a quarter of fewer than 32 is under 8).
    candidates = [_candidate(f"question {i}", f"a real answer to question {i}") for i in range(40)]
    candidates += [_candidate(f"question {i}", "the same twelve times over") for i in range(12)]
    candidates += [_candidate(f"question {i}", "the same eight times over") for i in range(20, 28)]
    with local_pipeline(SEVERAL_BUNDLES) as pipeline:
        found = (
            pipeline
            | beam.Create(candidates, reshuffle=True)
            | BoilerplateResponses(GroupingSettings(boilerplate_prompts="auto"), buckets=4)
        )
        collect_to(found, tmp_path / "b", "B")
    assert [tuple(pair) for pair in collected(tmp_path / "b")] == [(stable_id("the same twelve times over"), 12)]
