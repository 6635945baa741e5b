"""The lattice's name for node identities: Ed25519 key pairs named by `did:key` (see `plurigrid.state.identity`).

Why here too: identities live in `state` (the lowest layer) because ledgers sign their blocks with
them; the lattice's modules and their users keep importing them from the lattice.
"""

from plurigrid.state.identity import Identity, IdentityError, b58decode, b58encode, did_of, public_key_of, verify

__all__ = ["Identity", "IdentityError", "b58decode", "b58encode", "did_of", "public_key_of", "verify"]
