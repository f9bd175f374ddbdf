"""The embedding near-duplicate test never judges a text cut at the embedder's window, on real long answers."""

import numpy as np
import pytest

from mrtcurate.selectors import NearDuplicateRule, Pool, collapse_near_duplicates
from mrtcurate.vectors.embedders import load_embedder, window_fit
from tests.conftest import read_jsonl_gz, shared_corpus


@pytest.mark.slow
def test_long_answers_sharing_their_first_window_do_not_merge_by_embedding():
    rows = read_jsonl_gz(shared_corpus("flask"), limit=3000)
    long_answers = sorted({row["response"] for row in rows if isinstance(row["response"], str)}, key=len, reverse=True)[
        :2
    ]
    # Two answers with the same first ~2,000 characters (well past 256 tokens) and different bodies after it.
    prefix = long_answers[0][:2000]
    texts = [prefix + long_answers[0][2000:], prefix + " " + long_answers[1]]
    fits = window_fit("minilm-int8")(texts)
    assert not fits.any()
    embedder = load_embedder("minilm-int8")
    vectors, truncated = embedder.embed(texts, batch_size=2)
    assert truncated.all() and float(vectors[0] @ vectors[1]) > 0.99  # the embedder saw the same prefix only
    pool = Pool("p", ("a", "b"), np.ones(2, dtype=np.int64), np.array([np.nan, np.nan]), vectors)
    assert collapse_near_duplicates(pool, texts, NearDuplicateRule(None, 0.95), fits).merged == 0
    whole = np.ones(2, dtype=bool)  # what the old rule did: judge them by the cut vectors
    assert collapse_near_duplicates(pool, texts, NearDuplicateRule(None, 0.95), whole).merged == 1
