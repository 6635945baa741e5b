"""Plurigrid market layer."""
