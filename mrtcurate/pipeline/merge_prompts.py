"""Optional prompt merge: near-duplicate prompts (cosine >= tau over prompt embeddings) become one
group before exact dedup, so that their responses form one pool. Rows keep their original prompt text.

The grouping needs every prompt embedding in one place (a FAISS range search over all of them); at
384 float32 dimensions that is 1.5 KB per distinct prompt on one worker.
"""

from __future__ import annotations

from dataclasses import replace

import apache_beam as beam
import numpy as np

from mrtcurate.schemas import Candidate
from mrtcurate.schemas.config import EmbeddingSettings
from mrtcurate.schemas.counts import Count
from mrtcurate.vectors.prompt_groups import prompt_groups

MERGE_COUNTS = "merge_counts"


def _groups(embedded: list[tuple[str, np.ndarray]], tau: float) -> dict[str, str]:
    embedded = sorted(embedded, key=lambda item: item[0])
    if not embedded:
        return {}
    ids = [prompt_id for prompt_id, _ in embedded]
    return prompt_groups(ids, np.stack([vector for _, vector in embedded]), tau)


def _merge_counts(groups: dict[str, str], distinct_prompts: int):
    yield Count.PROMPTS_BEFORE_MERGE.value, distinct_prompts
    yield Count.PROMPT_GROUPS_MERGED.value, len(set(groups.values()))


class MergeNearDuplicatePrompts(beam.PTransform):
    """Candidates in; candidates keyed by their prompt group out, plus counts for the manifest."""

    def __init__(self, embedding: EmbeddingSettings, tau: float):
        super().__init__()
        self.embedding = embedding
        self.tau = tau

    def expand(self, candidates):
        prompts = (
            candidates
            | "PromptText" >> beam.Map(lambda c: (c.prompt_id, c.prompt))
            | "DistinctPrompts" >> beam.CombinePerKey(min)
        )
        # Beam's RunInference imports torch (a second and a half): imported only by jobs that embed.
        from mrtcurate.pipeline.embed import EmbedTexts

        embedded = prompts | "EmbedPrompts" >> EmbedTexts(self.embedding, kind="merge_prompts")
        groups = embedded | "AllPrompts" >> beam.combiners.ToList() | "Group" >> beam.Map(_groups, self.tau)
        distinct = prompts | "CountPrompts" >> beam.combiners.Count.Globally()
        counts = groups | "MergeCounts" >> beam.FlatMap(_merge_counts, beam.pvalue.AsSingleton(distinct))
        merged = candidates | "Regroup" >> beam.Map(
            lambda c, groups: replace(c, prompt_id=groups.get(c.prompt_id, c.prompt_id)),
            beam.pvalue.AsSingleton(groups),
        ).with_output_types(Candidate)
        return merged, counts
