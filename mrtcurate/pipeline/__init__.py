"""Beam transforms, one file per stage; graph.py wires them into the whole job."""

import sys

# Beam's RunInference module imports its GPU ModelManager, which imports torch (a second and about 200 MB in every
# process: the driver and each worker), and treats that import as optional (ImportError leaves ModelManager None).
# This job never asks for the ModelManager (`use_model_manager` stays False), and its own embedders import torch
# only where they need it (the sentence-transformers one), so the import is declined: a None entry in sys.modules
# makes it raise ImportError. Here, because every worker imports this package before it runs any of its stages.
sys.modules.setdefault("apache_beam.ml.inference.model_manager", None)

from mrtcurate.pipeline import beam_overheads

beam_overheads.install()
