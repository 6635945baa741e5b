"""Privacy: what participants' data may be seen, and how coalitions compute totals without seeing members' values.

`secagg`: secure aggregation (Bonawitz et al.) of integer vectors over X25519, AES-GCM and Shamir shares.
"""
