"""The run configuration: composed pydantic models, each option declared once with its default, bounds
and description. The `mrt run`/`plan` flags, the README option table and the flex-template metadata are
generated from these declarations (cli/options.py), and each stage receives its own section.

Users write options flat (`k: 8`, `--k 8`, `lambda: 0.3`), as YAML keys or flags; `RunConfig.from_options`
routes each to its section. Nested YAML (`selection: {k: 8}`) is accepted too.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

from mrtcurate.errors import UserError
from mrtcurate.schemas.presets import PRESETS

# Options that name where things go rather than what is computed; they stay out of the config hash.
_LOCATION_OPTIONS = {
    "output",
    "overwrite",
    "allow_empty",
    "license",
    "cache",
    "workers",  # how many processes compute it: the output is byte-identical whatever the count
}  # where, whether and under what terms to publish, not what
log = logging.getLogger(__name__)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class IngestSettings(_Section):
    """Which files, in which format and layout, and where each record keeps its parts."""

    input: list[str] = Field(
        min_length=1,
        json_schema_extra={"metavar": "PATTERN"},
        description="Beam file pattern, repeatable: local globs and `gs://` both work, and `hf://datasets/ORG/NAME[@REVISION][/GLOB]` reads a Hub dataset through the local Hugging Face cache; a file matched by several patterns is read once",
    )
    format: Literal["auto", "jsonl", "parquet", "csv"] = Field(
        "auto", description="input format: `auto` by extension (`.gz` read transparently), `jsonl`, `parquet`, `csv`"
    )
    preset: str | None = Field(
        None,
        json_schema_extra={"metavar": "NAME"},
        description="the mapping options of a public corpus shape, by name: "
        + ", ".join(f"`{name}`" for name in PRESETS)
        + " (README: Presets); options given explicitly override the preset's",
    )
    layout: Literal["auto", "flat", "grouped", "chat", "pairs", "tree"] = Field(
        "auto",
        description="record layout: `auto` (detected from the first 50 records of every file; files or records that disagree are refused, naming them), "
        "`flat` (a row per response), `grouped` (a list of responses per row, or a `[*]` response path, optionally with rewards alongside), "
        "`chat` (a messages list: the last assistant turn is the response, the turns before it the prompt), "
        "`pairs` (chosen/rejected, rewards 1/0 unless score_chosen/score_rejected or chosen_score/rejected_score exist), "
        "`tree` (message trees, OpenAssistant style: every assistant reply is a candidate for the conversation above it; "
        "nested under --prompt-field, or one message per row with --message-id-field and --parent-field; not detected, name it)",
    )
    prompt_field: str = Field(
        "prompt",
        description="field path of the prompt (`a.b` nests, `[N]` takes an element); tree layout: the root message, `$` for the record itself",
    )
    prompt_template: str | None = Field(
        None,
        json_schema_extra={"metavar": "TEMPLATE"},
        description="the prompt built from several field paths, e.g. `{instruction}\\n\\n{input}` (`\\n` is a newline): a part that is "
        "null or blank is left out with the text before it, so no separator dangles; a field the record lacks is a "
        "missing_template_field reject; replaces --prompt-field",
    )
    response_field: str = Field(
        "response",
        description="field path of the response; a list of responses, or a `[*]` path such as `completions[*].response`, makes the layout grouped",
    )
    reward_field: str | None = Field(
        None,
        description="field path of a numeric reward (`completions[*].overall_score` aligns with a `[*]` response path); numeric strings accepted, NaN/inf rejected, null kept as null",
    )
    reward_order: Literal["higher", "lower"] = Field(
        "higher",
        description="`lower` when smaller is better (ranks, 1 = best): topk, qd and duplicate merging prefer the smallest, and the curated `reward` column keeps the value as given",
    )
    id_field: str | None = Field(
        None, description="field path of a prompt id to group by, instead of the prompt text's hash"
    )
    source_field: str | None = Field(
        None, description="field path that fills the `source` column, instead of the file name"
    )
    finish_reason_field: str | None = Field(
        None,
        description="field path of a generation's finish reason (`outputs[*].finish_reason` aligns with a `[*]` response path): a response that stopped at "
        "the length limit (`length`, `max_tokens`) is a truncated_response reject unless --no-drop-truncated",
    )
    drop_truncated: bool = Field(
        True,
        description="with --finish-reason-field: reject responses cut off at the length limit (--no-drop-truncated keeps them)",
    )
    messages_field: str = Field("messages", description="chat layout: the list of turns")
    role_key: str = Field(
        "role",
        description="chat and tree layouts: the key of a turn's role; roles human/prompter/user, gpt/assistant/chatgpt/bard/model and system are read as user, assistant and system; turns with ShareGPT's `from`/`value` are recognised when the keys given are absent",
    )
    text_key: str = Field(
        "content", description="chat and tree layouts: the key of a turn's text (tree layout default: `text`)"
    )
    chosen_field: str = Field("chosen", description="pairs layout: the preferred response")
    rejected_field: str = Field("rejected", description="pairs layout: the dispreferred response")
    replies_field: str = Field("replies", description="tree layout, nested: the key of a message's list of replies")
    message_id_field: str | None = Field(
        None,
        description="tree layout, one message per row: the message's id (with --parent-field); the rows are joined into trees inside the job",
    )
    parent_field: str | None = Field(
        None, description="tree layout, one message per row: the id of the message it replies to (null for a root)"
    )
    tree_id_field: str | None = Field(
        None,
        description="tree layout, one message per row: a field naming each message's tree (OpenAssistant's `message_tree_id`): rows are grouped "
        "by it in one shuffle, instead of each finding its root by parent id in eight; a parent outside the message's tree is then missing_parent",
    )
    keep_deleted: bool = Field(
        False,
        description="tree layout: keep messages marked `deleted` or with `review_result` false (by default they and the replies below them are skipped, counted as deleted_message / failed_review)",
    )
    max_chars: int = Field(
        100_000, gt=0, description="records (and CSV rows) longer than this are rejected as record_too_large"
    )

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value):
        if value is not None and value not in PRESETS:
            raise ValueError(f"unknown preset '{value}'; the presets are {', '.join(PRESETS)}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _tree_defaults(cls, values):
        # A message tree's rank is its quality signal, 1 = best, and its turns keep their text under `text`
        # (OpenAssistant's export): the tree layout's defaults, which explicit options still override.
        if isinstance(values, dict) and values.get("layout") == "tree":
            values = {"text_key": "text", "reward_field": "rank", "reward_order": "lower", **values}
        return values


@functools.cache
def cuda_available() -> bool:
    """Without importing torch where it is not installed, nor on a Linux machine without the NVIDIA driver: the
    config is built at every start, before any model loads, and importing torch alone takes a second."""
    if importlib.util.find_spec("torch") is None:
        return False
    if sys.platform.startswith("linux") and not os.path.exists("/proc/driver/nvidia/version"):
        return False
    import torch

    return torch.cuda.is_available()


class EmbeddingSettings(_Section):
    embedder: str = Field(
        "auto",
        validate_default=True,
        description="`auto`: `minilm` on a CUDA GPU (fp16), else `minilm-int8`, the fastest that passes the quality gates against the "
        "reference (the manifest records which); `minilm` (all-MiniLM-L6-v2, shipped; the reference), `minilm-int8` (the same in ONNX "
        "Runtime, int8; CPU), `static` (static vectors distilled from MiniLM: far faster, coarser), `hashing` (no model, for tests), or "
        "a sentence-transformers path or cached name; `mrt embedders` compares them",
    )
    batch_size: int = Field(
        64,
        ge=1,
        description="embedding batch size of sentence-transformers models (`minilm-int8` embeds each text alone, measured fastest there)",
    )
    max_tokens: int | None = Field(
        None,
        ge=8,
        le=512,
        description="token window: longer texts are embedded by their first N tokens (default: the model's, 256 for the built-in ones); "
        "half the window is about half the CPU time on long texts; the report counts the texts cut",
    )

    @field_validator("embedder")
    @classmethod
    def _resolve_auto(cls, value: str) -> str:
        # Resolved where the config is built (the driver), so the config hash, the embedding cache key
        # and the workers all see one embedder. Dataflow with GPU workers and a CPU driver: name `minilm`.
        if value != "auto":
            return value
        return "minilm" if cuda_available() else "minilm-int8"


AUTO_BOILERPLATE_PROMPTS = 50
MAX_K = 2**31 - 1  # K travels through the job as a 64-bit integer; past this no pool is that large anyway


class GroupingSettings(_Section):
    """Which texts count as the same: near-duplicate responses of one prompt, near-duplicate prompts."""

    near_dup: float | None = Field(
        0.905,
        gt=0.0,
        le=1.0,
        description="responses to one prompt whose word sequences match at least this much (longest common subsequence ratio, case and "
        "punctuation aside) and that state the same numbers are near-duplicates: each joins the best representative it is itself "
        "similar to (no chaining), which absorbs its multiplicity; `off` disables the test",
        json_schema_extra={"metavar": "RATIO"},
    )
    near_dup_embedding: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="also merge responses whose embedding cosine is at least this (opt-in; paraphrases too, so set it high); never "
        "applied to texts longer than the embedder's token window",
        json_schema_extra={"metavar": "TAU"},
    )
    boilerplate_prompts: int | Literal["auto"] | None = Field(
        "auto",
        description="a response of three or more words that answers at least this many distinct prompts (a refusal template, a null "
        "model's output) is rejected as `boilerplate_response` on every prompt; `auto`: 50 prompts, or a quarter of the prompts "
        "when that is fewer (at least 3); `off` keeps them",
        json_schema_extra={"metavar": "N"},
    )
    merge_prompts: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="prompts with cosine >= this form one group whose responses share a pool; rows keep their own prompt text; "
        "the manifest counts prompts_before_merge and prompt_groups_merged",
        json_schema_extra={"metavar": "TAU"},
    )

    @field_validator("near_dup", "near_dup_embedding", "merge_prompts", "boilerplate_prompts", mode="before")
    @classmethod
    def _off_means_none(cls, value):
        # YAML 1.1 reads a bare `off` as False; both spellings mean "disabled".
        if value is False or (isinstance(value, str) and value.lower() == "off"):
            return None
        return value

    @field_validator("boilerplate_prompts")
    @classmethod
    def _at_least_two_prompts(cls, value):
        if isinstance(value, int) and value < 2:
            raise ValueError("boilerplate_prompts counts distinct prompts: give 2 or more, auto or off")
        return value

    def boilerplate_threshold(self, prompts: int) -> int | None:
        """Distinct prompts a response must answer to be boilerplate in a corpus of `prompts` prompts."""
        if self.boilerplate_prompts != "auto":
            return self.boilerplate_prompts
        return min(AUTO_BOILERPLATE_PROMPTS, max(3, math.ceil(prompts / 4)))


class QDSettings(_Section):
    """Options of the quality-diversity selector."""

    lam: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        alias="lambda",
        description="qd: weight of quality against diversity, in [0, 1]; with no rewards qd is diversity-only and the manifest says so; "
        "the default passes both halves on the structured benchmark (valid share within 95% of topk's, valid modes at least random's: "
        "benchmarks/qd_lambda.py); the run's qd_frontier measures every lambda on its own data and recommends one",
    )
    quality_norm: Literal["rank", "minmax"] = Field(
        "rank", description="qd: rewards to quality in [0, 1] within a pool, by rank or min-max"
    )
    similarity: Literal["cosine", "shifted"] = Field(
        "cosine", description="qd: `cosine` = max(cos, 0) or `shifted` = (1 + cos) / 2"
    )
    diversity: Literal["facility", "logdet"] = Field(
        "facility", description="qd: weighted facility location, or `logdet` (DPP MAP)"
    )
    optimizer: Literal["lazy", "naive", "stochastic"] = Field(
        "lazy",
        description="qd: `lazy` greedy (naive on pools of up to 256, where it is faster), `naive` greedy (same result), `stochastic` greedy",
    )
    epsilon: float = Field(
        0.1, gt=0.0, lt=1.0, description="qd stochastic greedy: samples (N / K) log(1 / epsilon) candidates per step"
    )
    sparse_above: int = Field(
        4096,
        ge=2,
        description="qd: pools larger than this use a FAISS k-nearest-neighbour graph instead of a dense matrix",
    )
    neighbours: int = Field(32, ge=1, description="qd: neighbours per candidate in the kNN graph")
    hnsw_above: int = Field(
        50_000,
        ge=2,
        description="qd: kNN graphs of pools larger than this use an HNSW index (approximate, fp16) instead of exact search",
    )


class SelectionSettings(_Section):
    selector: Literal["random", "topk", "qd"] = Field(
        "random",
        description="`random` (Random-K-of-N, unbiased), `topk` (reward top-K, biased towards high-reward modes; a prompt with more than K candidates "
        "and no reward at all gets Random-K-of-N, counted as selection.random_fallback_prompts), `qd` (quality-diversity: greedy on "
        "lambda * quality + (1 - lambda) * weighted facility location)",
    )
    k: int | Literal["auto"] = Field(
        4,
        json_schema_extra={"metavar": "K"},
        description="responses kept per prompt (prompts with K or fewer candidates keep all), or `auto` for the planner's recommended K, computed in the same job",
    )
    seed: int = Field(0, ge=0, lt=2**63, description="seed of every random choice (0 to 2**63 - 1)")
    weighting: Literal["prompt", "row"] = Field(
        "prompt", description="row weights: `prompt` sums to 1 per prompt, proportional to draws; `row` is 1 per row"
    )
    hot_above: int = Field(
        50_000,
        ge=2,
        description="pools larger than this (distinct responses, counted before embedding) are split by response hash into parts, each keeps 4K, and K are chosen from the union (exact for random and topk, GreeDi for qd)",
    )
    part_size: int = Field(8_192, ge=2, description="candidates per part of a split pool")
    qd: QDSettings = QDSettings()

    @field_validator("k")
    @classmethod
    def _positive_k(cls, value):
        if value != "auto" and not 1 <= value <= MAX_K:
            raise ValueError(f"k must be an integer from 1 to {MAX_K:,}, or auto")
        return value


class PlanSettings(_Section):
    """The variance-budget planner (DESIGN.md 2.1)."""

    plan: bool = Field(
        True,
        description="run the variance-budget planner; with `--no-plan`, no `--near-dup-embedding` and a selector that needs no embeddings, nothing is embedded",
    )
    feature_column: str | None = Field(
        None,
        json_schema_extra={"metavar": "COLUMN"},
        description="planner feature: a column holding a list of floats per row, instead of the response embeddings",
    )
    tolerance: float = Field(
        0.1, gt=0.0, description="planner: recommend the smallest K whose variance is within this of V(inf)"
    )
    cost_ratio: float | None = Field(
        None, gt=0.0, description="planner: c_p / c_r; given, the recommendation is K* under this cost ratio"
    )
    redundancy_threshold: float = Field(
        0.95,
        gt=0.0,
        le=1.0,
        description="planner: prompt cosine that counts as the same prompt for the effective prompt count",
    )
    bootstrap: int = Field(
        200, ge=1, description="planner: bootstrap replicates (Poisson weights per prompt) behind the intervals"
    )
    ci_level: float = Field(0.9, gt=0.0, lt=1.0, description="planner: level of the bootstrap intervals")


class ScoringSettings(_Section):
    reward_model: str | None = Field(
        None,
        json_schema_extra={"metavar": "PATH"},
        description="score every distinct response with a local transformers sequence-classification model (a directory, or a name in the local Hugging Face cache): "
        "its logit for (prompt, response) becomes the reward the selectors and the planner read",
    )
    reward_label: str | None = Field(
        None,
        json_schema_extra={"metavar": "NAME"},
        description="with --reward-model: the output label that is the score, for a model with several",
    )
    rescore: Literal["model", "field"] | None = Field(
        None,
        description="with --reward-field and a scorer (--reward-model or --judge-url): `model` replaces the field's rewards with the scores, `field` keeps them and scores only responses without one",
    )
    score_batch_size: int = Field(
        16, ge=1, description="with --reward-model: pairs per forward pass (sorted by length, so little is padding)"
    )
    judge_url: str | None = Field(
        None,
        json_schema_extra={"metavar": "URL"},
        description="grade every distinct response with an LLM judge behind an OpenAI-compatible API (vLLM, SGLang, hosted), "
        "given as its base URL (http://localhost:8000/v1) or its chat/completions URL: the grade (1-10) becomes the reward",
    )
    judge_model: str | None = Field(
        None, json_schema_extra={"metavar": "NAME"}, description="with --judge-url: the model name the endpoint serves"
    )
    judge_template: str | None = Field(
        None,
        json_schema_extra={"metavar": "FILE"},
        description="with --judge-url: the grading prompt, with ${prompt} and ${response}; it must make the reply end in `Score: N` "
        "(default: a 1-10 rubric; README)",
    )
    judge_concurrency: int = Field(8, ge=1, le=256, description="with --judge-url: requests in flight per worker")
    judge_timeout: float = Field(60.0, gt=0, description="with --judge-url: seconds one request may take")
    judge_budget: int | None = Field(
        None,
        ge=0,
        json_schema_extra={"metavar": "N"},
        description="with --judge-url: the most requests the run makes, retries included; responses left over get no score (counted)",
    )
    judge_key_env: str | None = Field(
        None,
        json_schema_extra={"metavar": "VAR"},
        description="with --judge-url: the environment variable holding the API key (a key is never a flag)",
    )

    @model_validator(mode="after")
    def _one_scorer(self):
        if self.judge_url and self.reward_model:
            raise ValueError("--reward-model and --judge-url both score the responses: give one")
        if self.judge_url and not self.judge_model:
            raise ValueError("--judge-url needs --judge-model, the model name the endpoint serves")
        judge_only = ("judge_model", "judge_template", "judge_budget", "judge_key_env")
        if not self.judge_url and (given := [name for name in judge_only if getattr(self, name) is not None]):
            raise ValueError(f"--{given[0].replace('_', '-')} needs --judge-url")
        return self

    @property
    def scorer(self) -> str | None:
        return "model" if self.reward_model else "judge" if self.judge_url else None


class OutputSettings(_Section):
    output: str | None = Field(
        None,
        json_schema_extra={"metavar": "DIR"},
        description="directory the dataset is published to; a non-empty one (subfolders count) needs `--overwrite`; an existing file, or a directory that holds an input, is refused whatever `--overwrite` says",
    )
    overwrite: bool = Field(False, description="replace a non-empty output directory")
    allow_empty: bool = Field(
        False,
        description="publish even when no input record became a candidate (by default such a run fails in one line: the mapping most likely matched nothing)",
    )
    shards: int | None = Field(None, ge=1, description="number of output shards (by size, ~256 MB each)")
    dropped_texts: bool = Field(
        False,
        description="write each dropped response's text into dropped/ (one row per response not kept, and why: exact or near duplicate, not selected); by default ids only",
    )
    cache: str | None = Field(
        None,
        json_schema_extra={"metavar": "DIR"},
        description="keep response vectors and reward scores in DIR by content, written as they are computed: a run killed at any point and started again recomputes nothing it finished, and later runs reuse them (local or gs://)",
    )
    license: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9.+-]*$",
        json_schema_extra={"metavar": "ID"},
        description="the dataset's licence as the Hub names it (`apache-2.0`, `cc-by-4.0`, `other`...), written into the dataset card",
    )


class ExecutionSettings(_Section):
    """How the local runner runs the job: never what it computes."""

    workers: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto",
        json_schema_extra={"metavar": "N"},
        description="worker processes of the local runner, the output byte-identical whatever the count: `auto` uses one per core (up to 4) once the input holds an estimated 32 MB of text or more, and runs a smaller job in-process (workers take about 3 s to start); `-- --direct_num_workers` or a `--runner` overrides it",
    )


class RunConfig(_Section):
    ingest: IngestSettings
    embedding: EmbeddingSettings = EmbeddingSettings()
    grouping: GroupingSettings = GroupingSettings()
    selection: SelectionSettings = SelectionSettings()
    planner: PlanSettings = PlanSettings()
    scoring: ScoringSettings = ScoringSettings()
    publish: OutputSettings = OutputSettings()
    execution: ExecutionSettings = ExecutionSettings()

    @model_validator(mode="after")
    def _auto_k_needs_the_planner(self):
        if self.selection.k == "auto" and not self.planner.plan:
            raise ValueError(
                "k: auto takes K from the planner, which plan: false (--no-plan) turns off; give a number or drop --no-plan"
            )
        return self

    @model_validator(mode="after")
    def _one_source_of_rewards(self):
        if self.scoring.scorer and self.ingest.reward_field and self.scoring.rescore is None:
            flag = "--reward-model" if self.scoring.reward_model else "--judge-url"
            raise ValueError(
                f"--reward-field and {flag} both give rewards: say which wins with --rescore model or --rescore field"
            )
        return self

    @classmethod
    def from_options(cls, values: dict) -> RunConfig:
        """Flat option names (YAML keys, flags) or nested sections, routed to their section."""
        nested: dict[str, Any] = {}
        for key, value in values.items():
            key = key if key in OPTIONS else OPTIONS_BY_ATTRIBUTE.get(key, key)  # `lam` as well as `lambda`
            if key in cls.model_fields and isinstance(value, dict):
                _merge(nested.setdefault(key, {}), value)
            elif key in OPTIONS:
                target = nested
                for part in OPTIONS[key].section:
                    target = target.setdefault(part, {})
                target[key] = value
            else:
                nested[key] = value  # pydantic names it as an unknown option
        return cls(**nested)

    def options(self) -> dict[str, Any]:
        """Every option, flat, by its user-facing name."""
        return {name: option.value_in(self) for name, option in OPTIONS.items()}

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.hashed_fields(), sort_keys=True).encode()).hexdigest()

    def hashed_fields(self) -> dict:
        return {name: value for name, value in self.options().items() if name not in _LOCATION_OPTIONS}

    def replace(self, **options) -> RunConfig:
        """A copy with some options changed, by their flat names, validated again."""
        return RunConfig.from_options({**self.options(), **options})


class Option:
    """One user-facing option: its flat name, the section that holds it and its field declaration."""

    def __init__(self, name: str, section: tuple[str, ...], attribute: str, info: FieldInfo):
        self.name, self.section, self.attribute, self.info = name, section, attribute, info

    def value_in(self, config: RunConfig) -> Any:
        holder: Any = config
        for part in self.section:
            holder = getattr(holder, part)
        return getattr(holder, self.attribute)


def _walk(model: type[BaseModel], section: tuple[str, ...]) -> Iterator[Option]:
    for attribute, info in model.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            yield from _walk(info.annotation, (*section, attribute))
        else:
            yield Option(info.alias or attribute, section, attribute, info)


OPTIONS: dict[str, Option] = {option.name: option for option in _walk(RunConfig, ())}


def _merge(target: dict, values: dict) -> None:
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def load_yaml(path: str | Path) -> dict:
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UserError(f"cannot read config file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise UserError(
            f"config file {path} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start})"
        ) from None
    except yaml.YAMLError as error:
        raise UserError(f"config file {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UserError(f"config file {path} must hold a mapping of option names to values")
    for key in loaded:
        if not isinstance(key, str):
            hint = (
                " (YAML 1.1 reads unquoted on/off/yes/no as booleans: quote the key)" if isinstance(key, bool) else ""
            )
            raise UserError(f"config file {path}: key {key!r} is not an option name{hint}")
    return loaded


def build_config(file_values: dict, cli_values: dict) -> RunConfig:
    """Preset first, file values over it, CLI flags on top; any invalid or unknown key becomes one readable line."""
    merged = {**file_values, **{key: value for key, value in cli_values.items() if value is not None}}
    if merged.get("preset") is not None:
        if merged["preset"] not in PRESETS:
            raise UserError(
                f"invalid configuration: preset: unknown preset '{merged['preset']}'; the presets are {', '.join(PRESETS)}"
            )
        merged = {**PRESETS[merged["preset"]].options, **merged}
    if isinstance(merged.get("input"), str):
        merged["input"] = [merged["input"]]
    try:
        config = RunConfig.from_options(merged)
    except ValidationError as error:
        raise UserError(f"invalid configuration: {_describe(error.errors())}") from None
    _warn_unused(config)
    return config


def _warn_unused(config: RunConfig) -> None:
    """Options that only one selector or layout reads, given with another: said, not silently ignored."""
    if config.selection.selector != "qd" and config.selection.qd.model_fields_set:
        given = sorted(OPTIONS_BY_ATTRIBUTE[name] for name in config.selection.qd.model_fields_set)
        verb = "apply" if len(given) > 1 else "applies"
        log.warning(
            "%s %s only to --selector qd; ignored with --selector %s", ", ".join(given), verb, config.selection.selector
        )
    layout = config.ingest.layout
    for field, needs in _LAYOUT_OPTIONS.items():
        if layout not in ("auto", *needs) and field in config.ingest.model_fields_set:
            log.warning("%s only applies to --layout %s; ignored with --layout %s", field, " or ".join(needs), layout)


_LAYOUT_OPTIONS = {
    "messages_field": ("chat",),
    "chosen_field": ("pairs",),
    "rejected_field": ("pairs",),
    "role_key": ("chat", "tree"),
    "text_key": ("chat", "tree"),
    "replies_field": ("tree",),
    "message_id_field": ("tree",),
    "parent_field": ("tree",),
    "tree_id_field": ("tree",),
    "keep_deleted": ("tree",),
    "finish_reason_field": ("flat", "grouped", "chat"),
    "drop_truncated": ("flat", "grouped", "chat"),
}


OPTIONS_BY_ATTRIBUTE = {option.attribute: option.name for option in OPTIONS.values()}


def _describe(problems: list[dict]) -> str:
    """One clause per option, by its user-facing name; a union's alternatives joined with "or"."""
    by_option: dict[str, list[str]] = {}
    for problem in problems:
        location = [str(part) for part in problem["loc"] if not isinstance(part, int)]
        if location == ["ingest"] and problem["type"] == "missing":
            location = ["input"]  # the one required option
        named = [
            OPTIONS_BY_ATTRIBUTE.get(part, part)
            for part in location
            if part in OPTIONS_BY_ATTRIBUTE or part not in _SECTIONS
        ]
        where = named[0] if named else ""
        if problem["type"] == "extra_forbidden":
            by_option.setdefault(f"unknown option '{where}'", [])
            continue
        by_option.setdefault(where, []).append(problem["msg"].removeprefix("Value error, "))
    return "; ".join(
        f"{where}: {' or '.join(messages)}" if where and messages else where or " or ".join(messages)
        for where, messages in by_option.items()
    )


_SECTIONS = {name for name, info in RunConfig.model_fields.items()} | {"qd"}
