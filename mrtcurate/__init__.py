"""mrtcurate: curate raw prompt-response corpora into multi-response fine-tuning sets."""

__version__ = "0.1.0"
