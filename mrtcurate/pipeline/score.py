"""Score each distinct response, after exact duplicates merged, so a text that appears a thousand times is scored
once: with a reward model (`--reward-model`) or an LLM judge (`--judge-url`). The scores become the candidates'
`reward`, which the planner and the selectors read as they read a reward field. With `--cache`, a score an
earlier run computed (same scorer, same prompt and response) is read back, and each new one is written there
as it comes, so a killed run loses few.

A reward model's scores are rounded to 1e-5: a logit for one text moves in its last bits with the batch it was
padded in, and batches differ between runs; rounded, the same inputs give the same shards. A judge's grades
are whatever the endpoint answers; with temperature 0 most servers answer the same, and the cache keeps them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import replace

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from mrtcurate.pipeline.cache import CacheWriter, ContentCache, cached_files, read_cached, score_key
from mrtcurate.schemas import Candidate
from mrtcurate.schemas.config import ScoringSettings
from mrtcurate.schemas.counts import Count

SCORE_DECIMALS = 5
COUNTS = "counts"
# The count of judge requests the job's workers share (RequestLedger), in the job's scratch folder.
JUDGE_LEDGER = ".judge-requests"
JUDGE_TALLY = {
    "requests": Count.JUDGE_REQUESTS,
    "prompt_tokens": Count.JUDGE_PROMPT_TOKENS,
    "completion_tokens": Count.JUDGE_COMPLETION_TOKENS,
    "unparsed": Count.JUDGE_UNPARSED,
    "failed": Count.JUDGE_FAILED,
    "over_budget": Count.JUDGE_OVER_BUDGET,
}
SCORES_SCHEMA = pa.schema(
    [pa.field("score_key", pa.string(), nullable=False), pa.field("score", pa.float64(), nullable=True)]
)


def scorer_identity(scoring: ScoringSettings):
    """The scorer's identity (checked: a bad model, URL or template fails here, in one line)."""
    if scoring.reward_model:
        from mrtcurate.vectors.reward_model import identity

        return identity(scoring.reward_model, scoring.reward_label)
    from mrtcurate.vectors.judge import judge_identity

    return judge_identity(
        scoring.judge_url,
        scoring.judge_model,
        scoring.judge_template,
        scoring.judge_key_env,
        scoring.judge_concurrency,
        scoring.judge_timeout,
        scoring.judge_budget,
    )


def _scores_table(keys: Sequence[str], scores: Sequence[float]) -> pa.Table:
    return pa.table([pa.array(keys, pa.string()), pa.array(scores, pa.float64())], schema=SCORES_SCHEMA)


class _Score(beam.DoFn):
    def __init__(
        self, scoring: ScoringSettings, judge, cache_folder: str | None, cache_files: tuple[str, ...], scratch: str
    ):
        self.scoring = scoring
        self.judge = judge  # the judge's identity, read on the driver: its template file and key check stay there
        self.cache_folder = cache_folder
        self.cache_files = cache_files
        self.scratch = scratch
        self.scored = Metrics.counter("mrtcurate", "scored")

    def setup(self):
        if self.judge is None:
            from mrtcurate.vectors.reward_model import RewardModel

            # On the worker: its device decides the dtype.
            self.model = RewardModel(scorer_identity(self.scoring), self.scoring.score_batch_size)
        else:
            from mrtcurate.vectors.judge import Judge, RequestLedger

            budget = self.scoring.judge_budget
            ledger = None if budget is None else RequestLedger(os.path.join(self.scratch, JUDGE_LEDGER), budget)
            self.model = Judge(self.judge, ledger)
        self.known: dict[str, float | None] = {}
        for path in self.cache_files:
            table = read_cached(path)
            self.known.update(zip(table.column("score_key").to_pylist(), table.column("score").to_pylist()))

    def start_bundle(self):
        self.writer = CacheWriter(self.cache_folder, _scores_table) if self.cache_folder else None

    def process(self, batch: list[Candidate]):
        keep_field = self.scoring.rescore == "field"
        scores: dict[int, float | None] = {}
        to_score = []
        for index, candidate in enumerate(batch):
            if keep_field and candidate.reward is not None:
                continue
            key = score_key(candidate.prompt_id, candidate.response_id)
            if key in self.known:
                scores[index] = self.known[key]
            else:
                to_score.append(index)
        yield beam.pvalue.TaggedOutput(COUNTS, (Count.SCORES_FROM_CACHE.value, len(scores)))
        counts_before = self._tally()
        new = (
            self.model.score([batch[i].prompt for i in to_score], [batch[i].completion for i in to_score])
            if to_score
            else []
        )
        for index, score in zip(to_score, new, strict=True):
            scores[index] = None if math.isnan(score) else round(float(score), SCORE_DECIMALS)
        if self.writer is not None:
            # Unparsed and over-budget grades stay out: a later run asks again.
            self.writer.add(
                (score_key(batch[i].prompt_id, batch[i].response_id), scores[i])
                for i in to_score
                if scores[i] is not None
            )
        for index, candidate in enumerate(batch):
            yield replace(candidate, reward=scores[index]) if index in scores else candidate
        self.scored.inc(len(to_score))
        yield beam.pvalue.TaggedOutput(COUNTS, (Count.SCORED_BY_MODEL.value, len(to_score)))
        for name, n in self._tally().items():
            if n - counts_before.get(name, 0):
                yield beam.pvalue.TaggedOutput(COUNTS, (name, n - counts_before.get(name, 0)))

    def _tally(self) -> dict[str, int]:
        if self.scoring.reward_model:
            return {Count.SCORES_TRUNCATED.value: self.model.truncated}
        return {JUDGE_TALLY[name].value: n for name, n in self.model.tally.items()}

    def finish_bundle(self):
        if self.writer is not None:
            self.writer.flush()

    def teardown(self):
        if hasattr(self, "model") and hasattr(self.model, "close"):
            self.model.close()


class ScoreResponses(beam.PTransform):
    """Candidates (one per distinct response) in, the same candidates with the scorer's reward out, and counts.
    `scratch` is a local folder the job's workers share (the judge's request budget lives there)."""

    def __init__(self, scoring: ScoringSettings, cache: ContentCache | None, scratch: str):
        super().__init__()
        self.scoring = scoring
        self.scratch = scratch
        identity = scorer_identity(scoring)
        self.judge = identity if scoring.judge_url else None
        self.cache_folder = cache.scores(identity.cache_key) if cache else None

    def expand(self, candidates):
        # A model's batches are sorted by length before they are cut into forward passes: the more pairs one holds,
        # the less is padding (the 110M benchmark model lost 20% to padding at 16 pairs a batch). A judge answers
        # slowly and in parallel: its batches hold enough pairs to keep every request slot busy.
        smallest = (
            16 * self.scoring.score_batch_size if self.scoring.reward_model else 4 * self.scoring.judge_concurrency
        )
        scored = (
            candidates
            | "Batch" >> beam.BatchElements(min_batch_size=smallest, max_batch_size=4 * smallest)
            | "Score"
            >> beam.ParDo(
                _Score(
                    self.scoring,
                    self.judge,
                    self.cache_folder,
                    cached_files(self.cache_folder) if self.cache_folder else (),
                    self.scratch,
                )
            )
            .with_output_types(Candidate)
            .with_outputs(COUNTS, main="candidates")
        )
        return scored.candidates, scored[COUNTS]
