"""Plurigrid assets layer."""
