"""A prompt's pool from its members, the way every stage that selects (or measures selection) builds it."""

from __future__ import annotations

import numpy as np

from mrtcurate import selectors
from mrtcurate.schemas import Candidate


def pool_of_members(prompt_id: str, members: list) -> tuple[selectors.Pool, list[Candidate], list]:
    # Copies of one response merge here when the job had no reason to dedup before grouping (nothing to
    # embed, no planner: graph.read_and_embed); Candidate.merged_with is order-independent.
    merged: dict[str, tuple] = {}
    for candidate, vector in members:
        seen = merged.get(candidate.response_id)
        merged[candidate.response_id] = (
            (candidate, vector) if seen is None else (seen[0].merged_with(candidate), seen[1])
        )
    # Sorted by id so that the result cannot depend on the order the runner delivered the members in.
    members = sorted(merged.values(), key=lambda member: member[0].response_id)
    candidates = [candidate for candidate, _ in members]
    embeddings = None if members[0][1] is None else np.stack([vector for _, vector in members])
    pool = selectors.Pool(
        prompt_id=prompt_id,
        response_ids=tuple(c.response_id for c in candidates),
        multiplicities=np.array([c.multiplicity for c in candidates], dtype=np.int64),
        rewards=np.array([np.nan if c.reward is None else c.reward for c in candidates], dtype=np.float64),
        embeddings=embeddings,
    )
    return pool, candidates, members
