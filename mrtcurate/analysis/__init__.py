"""The variance-budget planner, controlled simulations and the run report (DESIGN.md 2.1)."""
