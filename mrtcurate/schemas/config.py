"""The validated run configuration: one pydantic model behind both `--config FILE.yaml` and the CLI flags."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mrtcurate.errors import UserError

# Fields that name where things go rather than what is computed; they stay out of the config hash.
_LOCATION_FIELDS = {"output", "overwrite"}


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    input: list[str] = Field(min_length=1)
    output: str | None = None  # required by `mrt run`, unused by `mrt plan`
    format: Literal["auto", "jsonl", "parquet", "csv"] = "auto"
    layout: Literal["auto", "flat", "grouped", "chat", "pairs"] = "auto"
    prompt_field: str = "prompt"
    response_field: str = "response"
    reward_field: str | None = None
    id_field: str | None = None
    source_field: str | None = None
    messages_field: str = "messages"
    chosen_field: str = "chosen"
    rejected_field: str = "rejected"
    max_chars: int = Field(default=100_000, gt=0)
    selector: Literal["random", "topk", "qd"] = "random"
    k: int | Literal["auto"] = 4
    plan: bool = True
    feature_column: str | None = None
    tolerance: float = Field(default=0.1, gt=0.0)
    cost_ratio: float | None = Field(default=None, gt=0.0)
    redundancy_threshold: float = Field(default=0.95, gt=0.0, le=1.0)
    seed: int = 0
    weighting: Literal["prompt", "row"] = "prompt"
    lam: float = Field(default=0.5, ge=0.0, le=1.0, alias="lambda")
    quality_norm: Literal["rank", "minmax"] = "rank"
    similarity: Literal["cosine", "shifted"] = "cosine"
    diversity: Literal["facility", "logdet"] = "facility"
    optimizer: Literal["lazy", "naive", "stochastic"] = "lazy"
    sparse_above: int = Field(default=4096, ge=2)
    neighbours: int = Field(default=32, ge=1)
    hot_above: int = Field(default=50_000, ge=2)
    part_size: int = Field(default=8_192, ge=2)
    near_dup: float | None = Field(default=0.95, gt=0.0, le=1.0)
    merge_prompts: float | None = Field(default=None, gt=0.0, le=1.0)
    embedder: str = "minilm"
    batch_size: int = Field(default=64, ge=1)
    shards: int | None = Field(default=None, ge=1)
    overwrite: bool = False

    @field_validator("k")
    @classmethod
    def _positive_k(cls, value):
        if value != "auto" and value < 1:
            raise ValueError("k must be a positive integer or auto")
        return value

    @field_validator("near_dup", "merge_prompts", mode="before")
    @classmethod
    def _off_means_none(cls, value):
        # YAML 1.1 reads a bare `off` as False; both spellings mean "disabled".
        if value is False or (isinstance(value, str) and value.lower() == "off"):
            return None
        return value

    @model_validator(mode="after")
    def _auto_k_needs_the_planner(self):
        if self.k == "auto" and not self.plan:
            raise ValueError("k: auto takes K from the planner, which plan: false (--no-plan) turns off; give a number or drop --no-plan")
        return self

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.hashed_fields(), sort_keys=True).encode()).hexdigest()

    def hashed_fields(self) -> dict:
        return self.model_dump(exclude=_LOCATION_FIELDS, by_alias=True)


def load_yaml(path: str | Path) -> dict:
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UserError(f"cannot read config file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise UserError(f"config file {path} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start})") from None
    except yaml.YAMLError as error:
        raise UserError(f"config file {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UserError(f"config file {path} must hold a mapping of option names to values")
    for key in loaded:
        if not isinstance(key, str):
            hint = " (YAML 1.1 reads unquoted on/off/yes/no as booleans: quote the key)" if isinstance(key, bool) else ""
            raise UserError(f"config file {path}: key {key!r} is not an option name{hint}")
    return loaded


def build_config(file_values: dict, cli_values: dict) -> RunConfig:
    """File values first, CLI flags on top; any invalid or unknown key becomes one readable line."""
    merged = {**file_values, **{key: value for key, value in cli_values.items() if value is not None}}
    if isinstance(merged.get("input"), str):
        merged["input"] = [merged["input"]]
    try:
        return RunConfig(**merged)
    except ValidationError as error:
        problems = "; ".join(_describe(problem) for problem in error.errors())
        raise UserError(f"invalid configuration: {problems}") from None


def _describe(problem: dict) -> str:
    where = ".".join(str(part) for part in problem["loc"]) or "config"
    if problem["type"] == "extra_forbidden":
        return f"unknown option '{where}'"
    message = problem["msg"].removeprefix("Value error, ")
    return message if not problem["loc"] else f"{where}: {message}"
