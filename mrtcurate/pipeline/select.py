"""Select K per prompt through the selector interface and turn the choice into curated rows."""

from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from mrtcurate import selectors
from mrtcurate.schemas import Candidate

COUNTS = "counts"


@dataclass(frozen=True)
class SelectionSettings:
    selector: str
    k: int
    seed: int
    weighting: str
    near_dup: float | None
    with_messages: bool


class _SelectPool(beam.DoFn):
    def __init__(self, settings: SelectionSettings):
        self.settings = settings
        self.selected = Metrics.counter("mrtcurate", "selected")

    def process(self, group):
        prompt_id, members = group
        # Sorted by id so that the result cannot depend on the order the runner delivered the members in.
        members = sorted(members, key=lambda member: member[0].response_id)
        candidates: list[Candidate] = [candidate for candidate, _ in members]
        embeddings = None if members[0][1] is None else np.stack([vector for _, vector in members])
        pool = selectors.Pool(
            prompt_id=prompt_id,
            response_ids=tuple(c.response_id for c in candidates),
            multiplicities=np.array([c.multiplicity for c in candidates], dtype=np.int64),
            rewards=np.array([np.nan if c.reward is None else c.reward for c in candidates], dtype=np.float64),
            embeddings=embeddings,
        )
        near_merged = 0
        if self.settings.near_dup is not None:
            pool, near_merged = selectors.collapse_near_duplicates(pool, self.settings.near_dup)
        selection = selectors.select(self.settings.selector, pool, self.settings.k, self.settings.seed)
        by_id = {c.response_id: c for c in candidates}
        yield from self._rows(pool, selection, by_id)
        self.selected.inc(len(selection.indices))
        for name, value in (
            ("prompts", 1),
            ("candidates", len(pool)),
            ("duplicates_near", near_merged),
            ("selected", len(selection.indices)),
        ):
            yield beam.pvalue.TaggedOutput(COUNTS, (name, value))

    def _rows(self, pool: selectors.Pool, selection: selectors.Selection, by_id: dict[str, Candidate]):
        quality = selectors.minmax_quality(pool.rewards)
        total_draws = selection.draws.sum()
        for rank, index in enumerate(selection.indices):
            candidate = by_id[pool.response_ids[index]]
            row = {
                "prompt_id": pool.prompt_id,
                "prompt": candidate.prompt,
                "completion": candidate.completion,
                "response_id": candidate.response_id,
                "rank": rank,
                "k": len(selection.indices),
                "pool_size": len(pool),
                "multiplicity": int(pool.multiplicities[index]),
                "weight": float(selection.draws[rank] / total_draws) if self.settings.weighting == "prompt" else 1.0,
                "reward": _finite_or_none(pool.rewards[index]),
                "quality": _finite_or_none(quality[index]),
                "selector": self.settings.selector,
                "gain": None if selection.gains is None else _finite_or_none(selection.gains[rank]),
                "source": candidate.source,
            }
            if self.settings.with_messages:
                row["messages"] = None if candidate.messages is None else [
                    {"role": turn.role, "content": turn.content} for turn in candidate.messages
                ]
            yield row


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


class SelectPerPrompt(beam.PTransform):
    """(candidate, embedding or None) in; curated rows out, with per-prompt counts as a tagged output."""

    def __init__(self, settings: SelectionSettings):
        super().__init__()
        self.settings = settings

    def expand(self, members):
        return (
            members
            | "KeyByPrompt" >> beam.Map(lambda member: (member[0].prompt_id, member))
            | "GroupPool" >> beam.GroupByKey()
            | "SelectK" >> beam.ParDo(_SelectPool(self.settings)).with_outputs(COUNTS, main="rows")
        )
