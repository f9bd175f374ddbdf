"""Boilerplate across prompts (DESIGN.md 2.2): one normalised response answering many distinct prompts (a
null model's output, a refusal template) is not an answer to any of them. A keyed count over the whole
corpus, inside the job: distinct (response, prompt) pairs counted per response; those at or over the
threshold leave as one `boilerplate_response` reject per record they stand for."""

from __future__ import annotations

import json

import apache_beam as beam

from mrtcurate.schemas import Candidate, Reject, RejectReason
from mrtcurate.schemas.config import GroupingSettings
from mrtcurate.schemas.counts import Count

BOILERPLATE = "boilerplate"
MIN_WORDS = 3  # "Yes", "No", "42": short answers many prompts share legitimately are never boilerplate


def _response_and_prompt(candidate: Candidate) -> tuple[str, str]:
    return candidate.response_id, candidate.prompt_id


def _long_enough(candidate: Candidate) -> bool:
    return len(candidate.completion.split()) >= MIN_WORDS


class _SplitBoilerplate(beam.DoFn):
    def process(self, candidate: Candidate, answered: dict[str, int]):
        prompts = answered.get(candidate.response_id)
        if prompts is None:
            yield candidate
            return
        record = json.dumps({"prompt": candidate.prompt, "response": candidate.completion}, ensure_ascii=False)
        reject = Reject(record, RejectReason.BOILERPLATE_RESPONSE.value, f"the same response answers {prompts} distinct prompts", candidate.source, None)
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
        prompts = (
            candidates
            | "PromptIds" >> beam.Map(lambda candidate: candidate.prompt_id)
            | "DistinctPrompts" >> beam.Distinct()
            | "CountPrompts" >> beam.combiners.Count.Globally()
        )
        answered = (
            candidates
            | "LongResponses" >> beam.Filter(_long_enough)
            | "ResponsePrompt" >> beam.Map(_response_and_prompt).with_output_types(tuple[str, str])
            | "DistinctPairs" >> beam.Distinct()
            | "PromptsPerResponse" >> beam.combiners.Count.PerKey()
            | "Boilerplate" >> beam.Filter(_over_threshold, beam.pvalue.AsSingleton(prompts), self.grouping)
        )
        split = candidates | "Split" >> beam.ParDo(_SplitBoilerplate(), beam.pvalue.AsDict(answered)).with_output_types(Candidate).with_outputs(BOILERPLATE, main="kept")
        rejects = split[BOILERPLATE]
        counts = rejects | "CountBoilerplate" >> beam.Map(lambda _: (Count.REJECTED_BOILERPLATE.value, 1))
        reasons = rejects | "BoilerplateReason" >> beam.Map(lambda reject: (reject.reason, 1))
        return split.kept, rejects, counts, reasons
