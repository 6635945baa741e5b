"""Plurigrid grid layer."""
