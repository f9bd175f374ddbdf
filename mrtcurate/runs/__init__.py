"""Driver-side orchestration: preflight checks, the curation run and its atomic publish, refresh snapshots."""
