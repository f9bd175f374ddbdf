# The bundled fine-tuning job (`mrt train`) on a CUDA PyTorch image.
#   docker build -f docker/train.Dockerfile -t mrt-train:0.1.0 .
# One GPU:
#   docker run --gpus all --shm-size 8g -v /data:/data mrt-train:0.1.0 \
#     --data /data/curated --model /data/models/base --output /data/runs/sft --pack --max-length 2048
# Several GPUs on one machine (DDP, one process per GPU):
#   docker run --gpus all --shm-size 8g -v /data:/data --entrypoint torchrun mrt-train:0.1.0 \
#     --nproc_per_node 8 -m mrtcurate.cli train --data /data/curated --model /data/models/base --output /data/runs/sft
# Models from the Hugging Face Hub: add -e HF_HUB_OFFLINE=0 (the image is offline by default).
ARG BASE_IMAGE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
FROM ${BASE_IMAGE}

ENV HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    PYTHONUNBUFFERED=1

WORKDIR /opt/mrtcurate
COPY pyproject.toml README.md ./
COPY mrtcurate ./mrtcurate
# The base image's torch (CUDA build) already meets torch>=2.3, so pip keeps it.
RUN pip install --no-cache-dir ".[train]" \
 && python -c "import torch, transformers, peft, mrtcurate.train.job; print('mrt train ready, torch', torch.__version__)"

WORKDIR /workspace
ENTRYPOINT ["mrt", "train"]
