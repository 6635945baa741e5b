"""Plurigrid: a local-first coordination layer for electricity."""

__version__ = "0.1.0"
