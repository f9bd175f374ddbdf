"""The bundled fine-tuning job: curated Parquet in, a fine-tuned causal LM out (transformers' Trainer)."""
