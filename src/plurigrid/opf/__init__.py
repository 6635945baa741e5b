"""Plurigrid opf layer."""
