"""Boilerplate across prompts (DESIGN.md 2.2): one normalised response answering many distinct prompts (a
null model's output, a refusal template) is not an answer to any of them. A keyed count over the whole
corpus, inside the job: the distinct prompts of each response, as one combine (partial sets merge before
the shuffle, so most of the work never crosses it); responses at or over the threshold leave as one
`boilerplate_response` reject per record they stand for.

Its cost, by benchmarks/scale.py at 200,000 responses (configs `random` against `random-no-boilerplate`, and
the qd pair): a Distinct then Count.PerKey over (response id, prompt id) strings added 46% to the random run;
this combine over hashed prompts adds 31% (4.5 s) there and 9.5% (5.6 s) to qd. Most of it is the candidates
being held until the counts are ready (the split reads them as a side input); the batch data path
(DESIGN.md 3) counts per bucket instead."""

from __future__ import annotations

import json

import apache_beam as beam

from mrtcurate.ids import stable_hash
from mrtcurate.schemas import Candidate, Reject, RejectReason
from mrtcurate.schemas.config import AUTO_BOILERPLATE_PROMPTS, GroupingSettings
from mrtcurate.schemas.counts import Count

BOILERPLATE = "boilerplate"
MIN_WORDS = 3  # "Yes", "No", "42": short answers many prompts share legitimately are never boilerplate
COUNT_CAP = 10_000  # distinct prompts counted per response; the detail of a response past it says "at least"


class _DistinctUpTo(beam.CombineFn):
    """How many distinct values, counted exactly up to `cap` (min(distinct, cap) whatever the bundling)."""

    def __init__(self, cap: int):
        self.cap = cap

    def create_accumulator(self) -> set:
        return set()

    def add_input(self, seen: set, value) -> set:
        if len(seen) < self.cap:
            seen.add(value)
        return seen

    def merge_accumulators(self, accumulators) -> set:
        merged: set = set()
        for seen in accumulators:
            merged |= seen
        return merged if len(merged) <= self.cap else set(sorted(merged)[: self.cap])

    def extract_output(self, seen: set) -> int:
        return len(seen)


def _response_and_prompt(candidate: Candidate) -> tuple[str, int]:
    # The prompt travels as a 64-bit hash: integers cross the shuffle cheaper than ids of any length.
    return candidate.response_id, stable_hash("boilerplate", candidate.prompt_id) >> 1  # fits a signed 64-bit VarInt


def _long_enough(candidate: Candidate) -> bool:
    return len(candidate.completion.split()) >= MIN_WORDS


class _SplitBoilerplate(beam.DoFn):
    def process(self, candidate: Candidate, answered: dict[str, int]):
        prompts = answered.get(candidate.response_id)
        if prompts is None:
            yield candidate
            return
        record = json.dumps({"prompt": candidate.prompt, "response": candidate.completion}, ensure_ascii=False)
        how_many = f"at least {COUNT_CAP:,}" if prompts >= COUNT_CAP else str(prompts)
        reject = Reject(
            record,
            RejectReason.BOILERPLATE_RESPONSE.value,
            f"the same response answers {how_many} distinct prompts",
            candidate.source,
            None,
        )
        for _ in range(candidate.multiplicity):
            yield beam.pvalue.TaggedOutput(BOILERPLATE, reject)


def _over_threshold(response_prompts: tuple[str, int], prompts: int, grouping: GroupingSettings) -> bool:
    return response_prompts[1] >= grouping.boilerplate_threshold(prompts)


class RejectBoilerplate(beam.PTransform):
    """Candidates in; (candidates kept, boilerplate rejects, their count pairs) out."""

    def __init__(self, grouping: GroupingSettings):
        super().__init__()
        self.grouping = grouping

    def expand(self, candidates):
        # The threshold needs the prompt count only below 4 x AUTO_BOILERPLATE_PROMPTS: counting that far is enough.
        prompts = (
            candidates
            | "PromptIds" >> beam.Map(lambda candidate: candidate.prompt_id)
            | "CountPrompts" >> beam.CombineGlobally(_DistinctUpTo(4 * AUTO_BOILERPLATE_PROMPTS))
        )
        answered = (
            candidates
            | "LongResponses" >> beam.Filter(_long_enough)
            | "ResponsePrompt" >> beam.Map(_response_and_prompt).with_output_types(tuple[str, int])
            | "PromptsPerResponse" >> beam.CombinePerKey(_DistinctUpTo(COUNT_CAP))
            | "Boilerplate" >> beam.Filter(_over_threshold, beam.pvalue.AsSingleton(prompts), self.grouping)
        )
        split = candidates | "Split" >> beam.ParDo(_SplitBoilerplate(), beam.pvalue.AsDict(answered)).with_output_types(
            Candidate
        ).with_outputs(BOILERPLATE, main="kept")
        rejects = split[BOILERPLATE]
        counts = rejects | "CountBoilerplate" >> beam.Map(lambda _: (Count.REJECTED_BOILERPLATE.value, 1))
        reasons = rejects | "BoilerplateReason" >> beam.Map(lambda reject: (reject.reason, 1))
        return split.kept, rejects, counts, reasons
