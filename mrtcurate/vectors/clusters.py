"""Near-duplicate clusters formed around representatives, which never chain.

Connected components of a "similar" graph join A and C whenever A~B and B~C, however far apart A and C
are: on real multi-model answers, components at cosine 0.95 merged 39 answers whose least similar pair
had cosine 0.76 (DESIGN.md 2.2). Here candidates are visited in a fixed order (the caller's: best first)
and each either joins the most similar representative it is itself linked to, or becomes one. Every
member of a cluster is therefore within the threshold of its representative.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix


def representative_clusters(
    order: np.ndarray, count: int, rows: np.ndarray, cols: np.ndarray, scores: np.ndarray
) -> np.ndarray:
    """The representative of each of `count` items (itself for a representative). `rows, cols, scores`
    list the linked pairs, each once, in either direction."""
    labels = np.arange(count)
    if len(rows) == 0:
        return labels
    links = coo_matrix(
        (np.concatenate([scores, scores]), (np.concatenate([rows, cols]), np.concatenate([cols, rows]))),
        shape=(count, count),
    ).tocsr()
    links.sum_duplicates()
    position = np.empty(count, dtype=np.int64)
    position[order] = np.arange(count)
    is_representative = np.zeros(count, dtype=bool)
    for item in order:
        start, end = links.indptr[item], links.indptr[item + 1]
        neighbours, similarity = links.indices[start:end], links.data[start:end]
        candidates = is_representative[neighbours]
        if candidates.any():
            neighbours, similarity = neighbours[candidates], similarity[candidates]
            # Most similar representative; a tie goes to the one visited first.
            best = np.lexsort((position[neighbours], -similarity))[0]
            labels[item] = neighbours[best]
        else:
            is_representative[item] = True
    return labels
