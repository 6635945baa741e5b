"""Plurigrid cli layer."""
