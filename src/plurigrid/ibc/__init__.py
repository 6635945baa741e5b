"""IBC for Plurigrid: a lattice's ledger seen as a chain by another grid or a chain (docs/ibc.md).

Built so far: the ICS-02 light client of a Plurigrid ledger (`client`) and the 02-client keeper that
creates and updates clients (`keeper`). Connections, channels, packets and the relayer come next.
"""
