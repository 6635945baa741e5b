"""Plurigrid state layer."""
