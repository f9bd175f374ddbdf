"""Beam transforms, one file per stage; graph.py wires them into the whole job."""
