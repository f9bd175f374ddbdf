"""Lexical near-duplicate test: two texts are near-duplicates when their word sequences nearly match and
they state the same numbers.

Similarity is the Indel (longest common subsequence) ratio of the two word sequences,
2 * LCS / (len_a + len_b), on NFKC case-folded word tokens, so punctuation, case and spacing never count
and a reordered sentence counts against it. A pair whose sets of numbers differ (`49` against `39`,
`6*3` against `6*9`) is never a near-duplicate: those are different answers written alike.

Chosen on hand-labelled answer pairs from real multi-model corpora (tests/fixtures/near_duplicates,
benchmarks/near_dup_rules.py): the default 0.905 is the lowest threshold with precision >= 0.97 there
(0.975, recall 0.63), where Jaccard of word or character shingles (what MinHash estimates) stays at or below
0.95 precision at every threshold: shingle sets cannot see the one-word change that makes another answer. rapidfuzz computes the ratio in C++ over all pairs of a
pool (`process.cdist` with a cutoff), so no MinHash estimate is needed: the test is exact at any pool size.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Indel

_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_BLOCK_ROWS = 512  # rows of the pair matrix computed at once: 512 x n float32, never n x n
EXACT_ROWS = 512
BANDS, ROWS_PER_BAND = 20, 5
_PRIME = np.uint64(2**31 - 1)
_PERMUTATIONS = np.random.default_rng(20261130).integers(1, 2**31 - 1, size=(2, BANDS * ROWS_PER_BAND), dtype=np.uint64)


def word_sequence(text: str) -> list[str]:
    """Case-folded word tokens; a text with no word character (emoji, symbols) keeps its
    whitespace-separated pieces, so that it is still compared by what it holds."""
    # ASCII is its own NFKC form: the normalisation was a third of this call on the job's mostly ASCII texts.
    folded = (text if text.isascii() else unicodedata.normalize("NFKC", text)).casefold()
    return _WORD.findall(folded) or folded.split()


def numbers(text: str) -> frozenset:
    """The numbers a text states, by value (`12.0` and `12` are one number; `1,000` is 1000)."""
    found = set()
    for literal in _NUMBER.findall(text):
        try:
            found.add(float(literal.replace(",", "")))
        except ValueError:  # `1.2.3`: a version or a date, kept as written
            found.add(literal)
    return frozenset(found)


def _as_strings(sequences: list[list[str]]) -> list[str]:
    """Each word becomes one code point of a pool-local alphabet, so that rapidfuzz's string kernels
    (bit-parallel LCS) compare word sequences as fast as they compare characters."""
    alphabet: dict[str, str] = {}
    encoded = []
    for words in sequences:
        encoded.append("".join(alphabet.setdefault(word, _code_point(len(alphabet))) for word in words))
    return encoded


def _code_point(index: int) -> str:
    # Skip the surrogate block, which Python strings may hold but rapidfuzz's UTF-32 path would not expect.
    return chr(index + 0x100 if index + 0x100 < 0xD800 else index + 0x100 + 0x800)


def lexical_pairs(texts: Sequence[str], threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, similarity) of every pair i < j that is a near-duplicate at `threshold`."""
    encoded = _as_strings([word_sequence(text) for text in texts])
    found = _all_pairs(encoded, threshold) if len(encoded) <= EXACT_ROWS else _proposed_pairs(encoded, threshold)
    # Only texts in a pair are read for numbers, each once: most pools have no pair.
    states = functools.cache(lambda index: numbers(texts[index]))
    kept = [(row, col, score) for row, col, score in found if states(row) == states(col)]
    rows, cols, scores = zip(*kept) if kept else ((), (), ())
    return np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64), np.array(scores, dtype=np.float32)


def _all_pairs(encoded: list[str], threshold: float):
    for start in range(0, len(encoded), _BLOCK_ROWS):
        block = process.cdist(encoded[start : start + _BLOCK_ROWS], encoded, scorer=Indel.normalized_similarity,
                              score_cutoff=threshold, dtype=np.float32, workers=1)  # fmt: skip
        block_rows, block_cols = np.nonzero(block)
        upper = block_rows + start < block_cols
        for row, col in zip(block_rows[upper], block_cols[upper]):
            yield int(row) + start, int(col), float(block[row, col])


def _proposed_pairs(encoded: list[str], threshold: float):
    a, b = _PERMUTATIONS
    signatures = np.empty((len(encoded), BANDS * ROWS_PER_BAND), dtype=np.uint64)
    for index, text in enumerate(encoded):
        words = (
            np.fromiter({ord(character) for character in text}, dtype=np.uint64)
            if text
            else np.zeros(1, dtype=np.uint64)
        )
        signatures[index] = ((a[:, None] * words[None, :] + b[:, None]) % _PRIME).min(axis=1)
    proposed: set[tuple[int, int]] = set()
    for band in range(BANDS):
        buckets: dict[bytes, list[int]] = {}
        for index, key in enumerate(signatures[:, band * ROWS_PER_BAND : (band + 1) * ROWS_PER_BAND]):
            buckets.setdefault(key.tobytes(), []).append(index)
        for members in buckets.values():
            proposed.update(
                (first, second) for position, first in enumerate(members) for second in members[position + 1 :]
            )
    for row, col in sorted(proposed):
        score = Indel.normalized_similarity(encoded[row], encoded[col], score_cutoff=threshold)
        if score:
            yield row, col, float(score)
