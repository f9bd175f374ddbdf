"""The package's layers (DESIGN.md section 3) import only downward, and Beam pipeline code lives in pipeline/."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mrtcurate"
# Highest first. Each layer may import itself and any layer after it, never one before it.
LAYERS = (
    "cli",
    "bench",
    "train",
    "runs",
    "report",
    "pipeline",
    "analysis",
    "selectors",
    "vectors",
    "ingest",
    "schemas",
    "outputs",
    "interrupts",
    "garbage",
    "allocator",
    "ids",
    "errors",
    "",
)
# Reading and writing files through Beam's FileSystems (local and gs:// alike) is I/O, not pipeline code.
BEAM_IO = ("apache_beam.io.filesystems", "apache_beam.io.filesystem")


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "mrtcurate":  # from mrtcurate import selectors (or __version__, a name of the root)
                yield from (f"mrtcurate.{alias.name}" if is_module(alias.name) else "mrtcurate" for alias in node.names)
            else:
                yield node.module


def is_module(name: str) -> bool:
    return (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").exists()


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        yield path, ".".join(part for part in relative.parts if part != "__init__")


def test_every_module_belongs_to_a_layer():
    for _, module in modules():
        assert layer_of(module) in LAYERS, module


def test_layers_import_only_downward():
    upward = []
    for path, module in modules():
        rank = LAYERS.index(layer_of(module))
        for target in imports(path):
            if target.startswith("mrtcurate") and LAYERS.index(layer_of(target)) < rank:
                upward.append(f"{module} imports {target}")
    assert not upward


def test_beam_pipeline_code_only_in_pipeline():
    outside = [
        f"{module} imports {target}"
        for path, module in modules()
        if layer_of(module) != "pipeline"
        for target in imports(path)
        if target.startswith("apache_beam") and not target.startswith(BEAM_IO)
    ]
    assert not outside


@pytest.mark.slow  # a fresh interpreter importing torch and transformers: 2.4 s alone, 9-12 s beside the fast lane
def test_the_trainer_does_not_import_beam():
    """Beam's threads in torchrun's processes made a DDP rank abort under load."""
    import subprocess
    import sys

    check = "import sys, mrtcurate.train.job, mrtcurate.cli; assert 'apache_beam' not in sys.modules, 'Beam imported'"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
