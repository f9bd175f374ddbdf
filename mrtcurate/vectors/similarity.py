"""Similarity between candidates, as a coverage structure for facility location: row i holds the
candidates j that i covers, with s_ij >= 0. Dense for small pools; a FAISS k-nearest-neighbour graph
(memory O(N k), never N x N) for large ones."""

from __future__ import annotations

from typing import Literal

import faiss
import numpy as np
from scipy.sparse import csr_matrix

SimilarityKind = Literal["cosine", "shifted"]


def transform(cosines: np.ndarray, kind: SimilarityKind) -> np.ndarray:
    """cosine: max(cos, 0); shifted: (1 + cos) / 2. Both in [0, 1], as facility location needs s >= 0."""
    if kind == "cosine":
        return np.maximum(cosines, 0.0)
    if kind == "shifted":
        return (1.0 + cosines) / 2.0
    raise ValueError(f"unknown similarity {kind!r}")


def dense_similarity(embeddings: np.ndarray, kind: SimilarityKind) -> np.ndarray:
    """A candidate without a usable vector (all zeros) has similarity 0 to every other and 1 to itself."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    similarity = transform((embeddings @ embeddings.T).astype(np.float64), kind)
    missing = ~embeddings.any(axis=1)
    if missing.any():
        similarity[missing] = 0.0
        similarity[:, missing] = 0.0
        similarity[missing, missing] = 1.0
    return similarity


def knn_similarity(
    embeddings: np.ndarray, kind: SimilarityKind, neighbours: int, hnsw_above: int = 50_000
) -> csr_matrix:
    """Each candidate j is covered by its `neighbours` nearest candidates i (itself included).
    Exact inner-product search up to `hnsw_above` candidates, HNSW beyond. The graph is assembled
    directly in CSR form (rows = queries, then one transpose) to keep the peak near O(N k)."""
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    count, dim = embeddings.shape
    neighbours = min(neighbours, count)
    if count > hnsw_above:
        # fp16 storage halves the index; cosines change by ~1e-3, far below any useful tau.
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_fp16, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = max(64, 2 * neighbours)
    else:
        index = faiss.IndexFlatIP(dim)
    index.add(embeddings)
    cosines, coverers = index.search(embeddings, neighbours)
    del index
    # As in dense_similarity: a candidate without a usable vector covers itself alone, and nothing covers it.
    missing = np.flatnonzero(~embeddings.any(axis=1))
    if len(missing):
        coverers[np.isin(coverers, missing)] = -1
        coverers[missing] = -1
        coverers[missing, 0] = missing
        cosines[missing, 0] = 1.0
    valid = coverers >= 0  # HNSW pads with -1 when it finds fewer than asked
    indptr = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(valid.sum(axis=1), out=indptr[1:])
    covered_by = csr_matrix(
        (transform(cosines[valid].astype(np.float64), kind), coverers[valid].astype(np.int32), indptr),
        shape=(count, count),
    )
    del cosines, coverers, valid
    graph = covered_by.T.tocsr()
    graph.sum_duplicates()
    graph.sort_indices()
    return graph
