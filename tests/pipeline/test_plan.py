"""The planner's one global combine (pipeline/plan.py): a hot prompt's parts meet in it, so its estimates do not
depend on whether a pool was split, nor on how the groups are spread over bundles."""

import json

import numpy as np
import pytest

from mrtcurate.pipeline.plan import SumStatistics
from tests.helpers import curate


def _entries(rng, prompts: int) -> dict:
    entries = {}
    for index in range(prompts):
        vectors = rng.normal(size=(3 + index % 4, 8))
        entries[f"prompt-{index}"] = [len(vectors), vectors.sum(axis=0), float((vectors**2).sum()), f"text {index}"]
    return entries


def _fold(combine: SumStatistics, groups: list) -> object:
    """Each group in its own accumulator, merged: as the runner's bundles meet."""
    accumulators = [combine.add_input(combine.create_accumulator(), group) for group in groups]
    return combine.extract_output(combine.merge_accumulators(accumulators))


def test_a_hot_prompt_split_into_parts_gives_the_moments_of_the_whole_prompt():
    rng = np.random.default_rng(0)
    entries = _entries(rng, 40)
    whole = _fold(SumStatistics(replicates=20, seed=3), [(0, entries)])
    count, total, squares, _ = entries["prompt-7"]
    half = [count // 2, count - count // 2]
    parts = [
        (("prompt-7", 1), {"prompt-7": [half[0], total * 0.25, squares * 0.5, "text 7 (one copy)"]}),
        (("prompt-7", 2), {"prompt-7": [half[1], total * 0.75, squares * 0.5, "text 7"]}),
        (("prompt-7", 3), {"prompt-7": [0, None, 0.0, "text 7 (a copy without a vector)"]}),
    ]
    rest = {prompt_id: entry for prompt_id, entry in entries.items() if prompt_id != "prompt-7"}
    split = _fold(SumStatistics(replicates=20, seed=3), [parts[2], (1, rest), parts[0], parts[1]])
    assert np.array_equal(split.moments.scalars, whole.moments.scalars)
    assert np.allclose(split.moments.sums, whole.moments.sums, atol=1e-9)
    assert split.moments.largest_pool == whole.moments.largest_pool
    assert split.hot_texts == [("prompt-7", "text 7")] and whole.hot_texts == []


def test_no_prompt_with_a_feature_gives_no_moments():
    found = _fold(SumStatistics(replicates=5, seed=0), [(0, {"p": [0, None, 0.0, "p"]})])
    assert found.moments is None and found.hot_texts == []


def test_the_job_plans_the_same_whether_or_not_a_pool_is_split(tmp_path):
    path = tmp_path / "corpus.jsonl"
    with path.open("w", encoding="utf-8") as sink:
        for prompt in range(30):
            size = 400 if prompt == 0 else 3 + prompt % 5
            for answer in range(size):
                sink.write(json.dumps({"prompt": f"question {prompt}", "response": f"answer {answer} to {prompt}"}))
                sink.write("\n")
    options = {"k": 2, "near_dup": "off", "boilerplate_prompts": "off"}
    unsplit = curate([path], tmp_path / "unsplit", **options).manifest["planner"]
    split = curate([path], tmp_path / "split", hot_above=100, part_size=64, **options).manifest["planner"]
    for field in ("sigma_b2", "sigma_w2", "recommended_k", "effective_prompts", "prompts", "responses"):
        assert split[field] == unsplit[field], field


def test_statistics_folded_per_bundle_on_the_runner_equal_the_direct_combine(tmp_path):
    """Select's planner entries are folded per bundle (statistics.FoldPerBundle, compacted) before they join the job's
    one combine of summaries as accumulators: on the real runner, over many groups and a hot prompt's parts, the
    moments and hot texts equal one combine over the groups themselves."""
    import apache_beam as beam

    from mrtcurate.pipeline.statistics import FoldPerBundle, OfAccumulators
    from tests.helpers import collect_to, collected, local_pipeline

    rng = np.random.default_rng(1)
    entries = _entries(rng, 5000)  # more than SumStatistics.BATCH, so compacting folds pending prompts
    groups = [(index, dict(list(entries.items())[index::7])) for index in range(7)]
    groups += [
        (("hot", 1), {"hot": [2, np.ones(8), 3.0, "hot b"]}),
        (("hot", 2), {"hot": [1, np.ones(8), 1.0, "hot a"]}),
    ]
    combine = SumStatistics(replicates=10, seed=5)
    with local_pipeline() as pipeline:
        folded = (
            pipeline
            | beam.Create(groups, reshuffle=True)
            | beam.ParDo(FoldPerBundle(combine, "planner"))
            | beam.MapTuple(lambda kind, accumulator: accumulator)
            | beam.CombineGlobally(OfAccumulators(combine))
        )
        collect_to(
            folded | beam.Map(lambda found: [found.moments.scalars.tolist(), found.hot_texts]), tmp_path / "f", "F"
        )
    ((scalars, hot_texts),) = collected(tmp_path / "f")
    direct = _fold(combine, groups)
    assert np.array_equal(np.array(scalars), direct.moments.scalars)
    assert [tuple(pair) for pair in hot_texts] == direct.hot_texts == [("hot", "hot a")]


@pytest.mark.slow
def test_the_sampled_prompt_count_on_the_runner_equals_the_direct_estimate(tmp_path):
    """Above EXACT_PROMPTS the effective prompt count is estimated from the redundancy basis (folded per bundle into
    the job's combine of summaries, as the default job does) and the sample's degrees (summed per bundle and over the
    bundles where the plan reads them): on the real runner, over batches spread across bundles, it equals the
    estimate computed directly from every vector."""
    import apache_beam as beam

    from mrtcurate.pipeline.plan import PlanVariance, RedundancyBasis, _redundancy_key
    from mrtcurate.pipeline.statistics import FoldPerBundle, OfAccumulators
    from mrtcurate.schemas.config import EmbeddingSettings, PlanSettings
    from mrtcurate.vectors.redundancy import EXACT_PROMPTS, SAMPLE_PROMPTS, links_to_sample, sampled_effective_prompts
    from tests.helpers import SEVERAL_BUNDLES, collect_to, collected, local_pipeline

    rng = np.random.default_rng(2)
    prompts = EXACT_PROMPTS + 2_000
    # Near-duplicate groups of one to four prompts: a group's members lie within a small angle of its centre.
    centres = rng.normal(size=(prompts, 16))
    vectors = centres[np.minimum(np.arange(prompts) // 3 + rng.integers(0, 2, prompts), prompts - 1)]
    vectors = vectors + 0.01 * rng.normal(size=vectors.shape)
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    pairs = [(f"prompt-{index}", vectors[index]) for index in range(prompts)]
    batches = [pairs[start : start + 700] for start in range(0, prompts, 700)]
    settings = PlanSettings()
    statistics = _fold(SumStatistics(settings.bootstrap, 0), [(0, _entries(rng, prompts))])
    basis_combine = RedundancyBasis()
    with local_pipeline(SEVERAL_BUNDLES) as pipeline:
        vector_batches = pipeline | "Batches" >> beam.Create(batches, reshuffle=True)
        basis = (
            vector_batches
            | beam.ParDo(FoldPerBundle(basis_combine, "basis"))
            | beam.MapTuple(lambda kind, accumulator: accumulator)
            | beam.CombineGlobally(OfAccumulators(basis_combine))
        )
        summary = (
            pipeline
            | "NoGroups" >> beam.Create([])
            | PlanVariance(
                EmbeddingSettings(),
                settings,
                0,
                statistics=pipeline | "Statistics" >> beam.Create([statistics]),
                prompt_vectors=vector_batches,
                basis=basis,
            )
        )
        collect_to(
            summary | beam.Map(lambda found: [found["effective_prompts"], found["effective_prompts_method"]]),
            tmp_path / "s",
            "S",
        )
    ((effective, method),) = collected(tmp_path / "s")
    smallest = sorted(pairs, key=_redundancy_key)[:SAMPLE_PROMPTS]
    sample = np.stack([vector for _, vector in smallest])
    degrees = links_to_sample(vectors, sample, settings.redundancy_threshold)
    expected = sampled_effective_prompts(degrees, prompts, settings.ci_level).count
    assert method == "sampled" and effective == expected
    assert prompts / 4 < expected < prompts  # the groups were found: fewer than every prompt, more than the centres
