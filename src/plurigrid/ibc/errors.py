"""IBC errors, one class with the name of ibc-go's registered error, so tests and peers speak the same codes.

A message received from another grid that breaks a rule (a forged proof, a header signed by too few
members) is a user error in the sense of ARCHITECTURE.md: one line, nothing committed.
"""

from __future__ import annotations

from plurigrid.errors import PlurigridError

# ibc-go's names (modules/core/02-client/types/errors.go and its 03/04 siblings) for what this package raises,
# and two of cosmos-sdk's
CODES = frozenset({
    "ErrClientNotFound", "ErrClientNotActive", "ErrInvalidClientType", "ErrConsensusStateNotFound", "ErrInvalidHeader",
    "ErrInvalidHeight", "ErrInvalidProof", "ErrClientFrozen", "ErrInvalidClient",
    "ErrConnectionNotFound", "ErrInvalidConnectionState", "ErrInvalidVersion", "ErrVersionNegotiationFailed",
    "ErrChannelNotFound", "ErrInvalidChannelState", "ErrInvalidPacket", "ErrTimeoutElapsed", "ErrTimeoutNotReached",
    "ErrSequenceSendNotFound", "ErrSequenceReceiveNotFound", "ErrSequenceAckNotFound", "ErrPacketSequenceOutOfOrder",
    "ErrNoOpMsg", "ErrInvalidRecoveryClient", "ErrInvalidSubstitute",
    "ErrPacketReceived", "ErrAcknowledgementExists", "ErrInvalidAcknowledgement",
    "ErrUnauthorized", "ErrInvalidRequest",  # cosmos-sdk's, for messages: a signer who may not, a message not understood
})


class IbcError(PlurigridError):
    """An IBC rule broken; `code` is ibc-go's error name (ErrClientNotActive, ErrInvalidProof, ...)."""

    def __init__(self, code: str, message: str) -> None:
        assert code in CODES, code  # a new code is added to CODES on purpose
        self.code = code
        super().__init__(f"{code}: {message}")
