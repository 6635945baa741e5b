"""Plurigrid nexus node: configuration, host profile, lifecycle."""
