"""Plurigrid engine layer."""
