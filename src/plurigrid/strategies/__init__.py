"""Plurigrid strategies layer."""
