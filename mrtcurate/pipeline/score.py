"""Score each distinct response with a reward model (`--reward-model`), after exact duplicates merged, so a
text that appears a thousand times is scored once. The scores become the candidates' `reward`, which the
planner and the selectors read as they read a reward field.

Scores are rounded to 1e-5: a model's logit for one text moves in its last bits with the batch it was
padded in, and bundles differ between runs; rounded, the same inputs give the same shards.
"""

from __future__ import annotations

from dataclasses import replace

import apache_beam as beam
from apache_beam.metrics import Metrics

from mrtcurate.schemas import Candidate
from mrtcurate.schemas.config import ScoringSettings
from mrtcurate.schemas.counts import Count

SCORE_DECIMALS = 5
COUNTS = "counts"


class _Score(beam.DoFn):
    def __init__(self, scoring: ScoringSettings):
        self.scoring = scoring
        self.scored = Metrics.counter("mrtcurate", "scored")

    def setup(self):
        from mrtcurate.vectors.reward_model import RewardModel, identity

        self.model = RewardModel(
            identity(self.scoring.reward_model, self.scoring.reward_label), self.scoring.score_batch_size
        )

    def process(self, batch: list[Candidate]):
        keep_field = self.scoring.rescore == "field"
        to_score = [candidate for candidate in batch if not (keep_field and candidate.reward is not None)]
        before = self.model.truncated
        scores = self.model.score([c.prompt for c in to_score], [c.completion for c in to_score]) if to_score else []
        scored = {
            id(candidate): round(float(score), SCORE_DECIMALS)
            for candidate, score in zip(to_score, scores, strict=True)
        }
        for candidate in batch:
            yield replace(candidate, reward=scored[id(candidate)]) if id(candidate) in scored else candidate
        self.scored.inc(len(to_score))
        yield beam.pvalue.TaggedOutput(COUNTS, (Count.SCORED_BY_MODEL.value, len(to_score)))
        yield beam.pvalue.TaggedOutput(COUNTS, (Count.SCORES_TRUNCATED.value, self.model.truncated - before))


class ScoreResponses(beam.PTransform):
    """Candidates (one per distinct response) in, the same candidates with the model's reward out, and counts."""

    def __init__(self, scoring: ScoringSettings):
        super().__init__()
        self.scoring = scoring

    def expand(self, candidates):
        scored = (
            candidates
            | "Batch"
            >> beam.BatchElements(
                min_batch_size=self.scoring.score_batch_size, max_batch_size=8 * self.scoring.score_batch_size
            )
            | "Score"
            >> beam.ParDo(_Score(self.scoring)).with_output_types(Candidate).with_outputs(COUNTS, main="candidates")
        )
        return scored.candidates, scored[COUNTS]
