"""`minilm-int8`: the shipped all-MiniLM-L6-v2 exported to ONNX, fused and dynamically quantised to int8,
run by ONNX Runtime.

Built with `torch.onnx` and `onnxruntime` alone: `sentence-transformers[onnx]` would do the export through
optimum, which in a fresh environment downgrades transformers and sentence-transformers below what the
training code needs. The recipe, measured on 400 long FLASK responses against PyTorch fp32
(benchmarks/embedders.py has the full figures):
- the graph is exported with mean pooling inside it (the model's pooling config says mean), then fused
  by ONNX Runtime's BERT optimiser (attention, GELU, skip-LayerNorm): fused fp32 alone runs at PyTorch's speed;
- weights are quantised per output channel: per-tensor int8 drops the mean cosine to fp32 from 0.993 to 0.947;
- MatMul and fused Attention only; the embedding tables stay fp32 (same speed, slightly better cosines);
- on a CPU without VNNI, weights use 7 bits (`reduce_range`), which avoids the saturation of the u8*s8
  instruction those CPUs use (ONNX Runtime's quantisation guide); the choice is part of the cache key.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import numpy as np

from mrtcurate.vectors.artifacts import Artifact, package_versions
from mrtcurate.vectors.embedders import Embedded, EmbedderBase, unit_rows

RECIPE_VERSION = "1"
_MODEL_FILE = "model.onnx"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@cache
def has_vnni() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False  # not Linux: assume the older instruction set, which is safe on every CPU
    return "avx512_vnni" in flags or "avx_vnni" in flags


def int8_artifact(model_dir: str, model_version: str) -> Artifact:
    reduce_range = not has_vnni()
    key = {
        "recipe": f"minilm-int8/{RECIPE_VERSION}",
        "model": model_version,
        **package_versions("torch", "transformers", "onnxruntime"),
        "reduce_range": str(reduce_range),
    }
    return Artifact("minilm-int8", key, lambda directory: _build_int8(model_dir, directory, reduce_range))


def _build_int8(model_dir: str, directory: Path, reduce_range: bool) -> None:
    # The exporter's tracer warnings and the quantiser's advice (on the root logger) are about this fixed
    # recipe, not about the user's run: a first `mrt run` should not print them.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _export_fuse_quantise(model_dir, directory, reduce_range)
    finally:
        root.setLevel(level)


def _export_fuse_quantise(model_dir: str, directory: Path, reduce_range: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    exported, fused = directory / "fp32.onnx", directory / "fused.onnx"
    config = _export_mean_pooled(model_dir, exported)
    optimize_model(
        str(exported), model_type="bert", num_heads=config["num_attention_heads"], hidden_size=config["hidden_size"]
    ).save_model_to_file(str(fused))
    quantize_dynamic(
        str(fused),
        str(directory / _MODEL_FILE),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=reduce_range,
        op_types_to_quantize=["MatMul", "Attention"],
        # The fused contrib ops have no ONNX shape inference: their outputs are float32.
        extra_options={"DefaultTensorType": 1},
    )
    exported.unlink()
    fused.unlink()
    shutil.copy(Path(model_dir) / "tokenizer.json", directory / "tokenizer.json")


def _export_mean_pooled(model_dir: str, destination: Path) -> dict:
    import torch
    from transformers import AutoModel

    pooling = json.loads((Path(model_dir) / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    if not pooling.get("pooling_mode_mean_tokens"):
        raise ValueError(f"{model_dir}: the ONNX recipe mean-pools, but the model's pooling config is {pooling}")
    # Eager attention: the SDPA path traces shape checks into constants.
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()

    class MeanPooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)

    example = tuple(torch.ones(2, 8, dtype=torch.long) for _ in _INPUTS)
    axes = {name: {0: "batch", 1: "tokens"} for name in _INPUTS}
    # The TorchScript exporter: the torch.export one needs onnxscript and gains nothing for a BERT encoder.
    torch.onnx.export(
        MeanPooled(), example, str(destination), input_names=list(_INPUTS), output_names=["embedding"],
        dynamic_axes={**axes, "embedding": {0: "batch"}}, opset_version=17, dynamo=False,
    )  # fmt: skip
    return model.config.to_dict()


class OnnxEmbedder(EmbedderBase):
    """One text per ONNX Runtime call, on as many threads as the process has cores, each call on one
    thread. Dynamic quantisation scales activations per call, so a text batched with others would get a
    vector that depends on its neighbours (up to 0.02 per component, measured): alone, a text's vector
    depends on its text only, whatever the batching of the runner or the number of workers, and carries
    no padding. It is also the fastest arrangement measured (500 long FLASK / 2,000 short instructgpt
    responses, 2 cores, texts/s): one text per call on 2 threads 160 / 933; batches of 8 on one 2-thread
    session 93 / 718; batches of 64 89 / 588; PyTorch fp32 57 / 320. `batch_size` does not apply."""

    def __init__(self, directory: Path, max_tokens: int):
        import onnxruntime
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.no_padding()  # the file pads every text to 128 tokens
        self.max_tokens = max_tokens
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(directory / _MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        # session.run releases the GIL: threads run the calls in parallel.
        self.threads = ThreadPoolExecutor(max_workers=cores, thread_name_prefix="onnx")

    def _embed_one(self, encoding) -> np.ndarray:
        ids = np.array([encoding.ids], dtype=np.int64)
        mask = np.array([encoding.attention_mask], dtype=np.int64)
        (pooled,) = self.session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )
        return pooled[0]

    def embed(self, texts: Sequence[str], batch_size: int = 1) -> Embedded:
        encodings = self.tokenizer.encode_batch(list(texts))
        truncated = np.array([bool(encoding.overflowing) for encoding in encodings], dtype=bool)
        vectors = np.array(list(self.threads.map(self._embed_one, encodings)), dtype=np.float32).reshape(
            len(encodings), -1
        )
        return Embedded(unit_rows(vectors), truncated)
