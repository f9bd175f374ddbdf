"""Parsing of raw input: bytes to records, records to candidates, field paths, templates, presets. Pure, except
files.py, which resolves and opens inputs through Beam's FileSystems (one client for every scheme)."""
