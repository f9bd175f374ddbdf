import apache_beam as beam

from mrtcurate.ids import identity_key, stable_id
from mrtcurate.pipeline.merge_prompts import MergeNearDuplicatePrompts
from mrtcurate.schemas import Candidate
from mrtcurate.schemas.config import EmbeddingSettings
from mrtcurate.vectors.embedders import HashingEmbedder
from mrtcurate.vectors.prompt_groups import prompt_groups
from tests.helpers import collect_to, collected, local_pipeline


def candidate(prompt, response):
    return Candidate(stable_id(identity_key(prompt)), stable_id(response), prompt, response, None, "s")


def test_prompt_groups_map_members_to_smallest_id():
    vectors = HashingEmbedder().encode(["how do I boil an egg", "how do I boil an egg?", "capital of France"])
    assert prompt_groups(["b", "a", "c"], vectors, 0.9) == {"b": "a"}
    assert "c" not in prompt_groups(["b", "a", "c"], vectors, 0.1)
    assert prompt_groups(["only"], vectors[:1], 0.5) == {}


def test_merge_in_beam_regroups_and_counts(tmp_path):
    items = [
        candidate("How do I boil an egg", "Boil it for 8 minutes"),
        candidate("how do I boil an egg?", "Put it in boiling water"),
        candidate("What is the capital of France", "Paris"),
    ]
    with local_pipeline() as pipeline:
        out, merge_counts = (
            pipeline
            | beam.Create(items)
            | MergeNearDuplicatePrompts(EmbeddingSettings(embedder="hashing", batch_size=8), 0.9)
        )
        collect_to(
            out | beam.Map(lambda c: {"prompt_id": c.prompt_id, "prompt": c.prompt}), tmp_path / "merged", "Merged"
        )
        collect_to(merge_counts, tmp_path / "counts", "Counts")
    merged, counts = collected(tmp_path / "merged"), collected(tmp_path / "counts")
    assert len({c["prompt_id"] for c in merged}) == 2
    egg = [c for c in merged if "egg" in c["prompt"]]
    assert len({c["prompt_id"] for c in egg}) == 1 and {c["prompt"] for c in egg} == {items[0].prompt, items[1].prompt}
    assert dict(counts) == {"prompts_before_merge": 3, "prompt_groups_merged": 1}
