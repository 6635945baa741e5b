"""Plurigrid microworld layer."""
