"""Texts to vectors to neighbourhoods: embedders, kNN similarity, near-duplicate components, prompt groups."""
