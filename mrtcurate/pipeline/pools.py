"""A prompt's pool from its members, the way every stage that selects (or measures selection) builds it, and the
parts a hot pool is split into."""

from __future__ import annotations

import math

import numpy as np

from mrtcurate import selectors
from mrtcurate.ids import stable_hash
from mrtcurate.schemas import Candidate
from mrtcurate.schemas.records import merged_copies


def pool_of_members(prompt_id: str, members: list) -> tuple[selectors.Pool, list[Candidate], list]:
    # Copies of one response merge here when the job had no reason to dedup before grouping (nothing to
    # embed, no planner: graph.read_and_embed); merged_copies is order-independent.
    copies: dict[str, list] = {}
    for member in members:
        copies.setdefault(member[0].response_id, []).append(member)
    merged = {
        response_id: (merged_copies([candidate for candidate, _ in found]), found[0][1])
        for response_id, found in copies.items()
    }
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


def distinct_candidates(candidates) -> list[Candidate]:
    """One candidate per (prompt, response), its copies merged (merged_copies is order-independent), in that key's
    order: the same whatever order the runner delivered the copies in."""
    copies: dict[tuple[str, str], list[Candidate]] = {}
    for candidate in candidates:
        copies.setdefault((candidate.prompt_id, candidate.response_id), []).append(candidate)
    return [merged_copies(copies[key]) for key in sorted(copies)]


def into_groups(keyed_batch, hot_sizes: dict[str, int], part_size: int):
    """A bucket's batch to its grouping keys: (bucket, "", 0) for whole pools, (bucket, prompt, part) for each part of
    a hot pool."""
    bucket, batch = keyed_batch
    whole, hot = [], {}
    for member in batch:
        prompt_id = member[0].prompt_id
        if prompt_id in hot_sizes:
            hot.setdefault(prompt_id, []).append(member)
        else:
            whole.append(member)
    if whole:
        yield (bucket, "", 0), whole
    for prompt_id, members in hot.items():
        for part, part_members in hot_parts(members, hot_sizes[prompt_id], part_size).items():
            yield (bucket, prompt_id, part), part_members


def hot_parts(members: list, size: int, part_size: int) -> dict[int, list]:
    """A hot pool's members by part, the part by response hash: the split depends on ids only, not on bundling."""
    parts: dict[int, list] = {}
    count = math.ceil(size / part_size)
    for member in members:
        parts.setdefault(stable_hash("part", member[0].response_id) % count, []).append(member)
    return parts


def add_to_prompt_entries(prompts: dict, candidate, embedding) -> None:
    """One member into its prompt's entry (pipeline/plan.py `group_prompts`). Select calls it on the members it reads
    anyway where K does not wait for the planner, which then reads no member itself."""
    entry = prompts.get(candidate.prompt_id)
    if entry is None:
        entry = prompts[candidate.prompt_id] = [0, None, 0.0, candidate.prompt]
    elif candidate.prompt < entry[3]:
        entry[3] = candidate.prompt
    feature = _feature(candidate, embedding)
    if feature is not None:
        entry[0] += 1
        entry[1] = feature if entry[1] is None else entry[1] + feature
        entry[2] += float(feature @ feature)


def entry_texts(prompts: dict) -> list[tuple[str, str]]:
    """(prompt id, text) of each prompt entry (add_to_prompt_entries), in prompt id order."""
    return [(prompt_id, entry[3]) for prompt_id, entry in sorted(prompts.items())]


def _feature(candidate, embedding) -> np.ndarray | None:
    """A response kept without a usable vector (a zero vector: pipeline/embed_responses.py) says nothing of
    the variance components and is left out of them."""
    if candidate.feature is not None:
        return np.asarray(candidate.feature, dtype=np.float64)
    if embedding is not None and embedding.any():
        return np.asarray(embedding, dtype=np.float64)
    return None
