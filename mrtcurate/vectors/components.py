"""Connected components of the cosine >= tau graph: near-duplicate responses, or prompts that merge."""

from __future__ import annotations

import faiss
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def near_duplicate_components(embeddings: np.ndarray, tau: float) -> np.ndarray:
    """Component label per row. FAISS range search keeps memory at O(edges), never an n x n matrix."""
    count = len(embeddings)
    index = faiss.IndexFlatIP(embeddings.shape[1])
    index.add(np.ascontiguousarray(embeddings, dtype=np.float32))
    # range_search keeps scores strictly above the radius; nudge it so that cosine == tau links too.
    limits, _, neighbours = index.range_search(np.ascontiguousarray(embeddings, dtype=np.float32), np.nextafter(np.float32(tau), np.float32(-1)))
    rows = np.repeat(np.arange(count), np.diff(limits).astype(np.int64))
    graph = coo_matrix((np.ones(len(neighbours), dtype=np.int8), (rows, neighbours)), shape=(count, count))
    _, labels = connected_components(graph, directed=False)
    return labels
