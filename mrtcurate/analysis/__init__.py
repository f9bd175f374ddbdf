"""Pure maths over arrays: the variance-budget planner (DESIGN.md 2.1), controlled simulations, embedder agreement and qd's quality-diversity frontier. The run report is report/."""
