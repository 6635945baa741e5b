"""Plurigrid lattice layer: identities, the signed hash graph, transports."""
