"""The 02-client keeper: creates clients of allowed types and updates them, freezing on misbehaviour.

As ibc-go's `keeper.CreateClient` and `keeper.UpdateClient`: an update is a header (or a misbehaviour)
verified against the client's trusted states; one that proves misbehaviour freezes the client instead
of updating it; a frozen or expired client takes no update.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field

from plurigrid.ibc.client import ACTIVE, CLIENT_TYPE, EXPIRED, ClientState, ConsensusState, Header, LightClientModule, Misbehaviour
from plurigrid.ibc.errors import IbcError

NEXT_CLIENT_SEQUENCE = b"nextClientSequence"
UNAUTHORIZED, UNKNOWN = "Unauthorized", "Unknown"


@dataclass
class ClientKeeper:
    store: MutableMapping[bytes, bytes] = field(default_factory=dict)
    allowed_clients: tuple[str, ...] = (CLIENT_TYPE,)

    def __post_init__(self) -> None:
        self.module = LightClientModule(self.store)

    def create_client(self, client_type: str, client_state: ClientState, consensus_state: ConsensusState, now_ns: int) -> str:
        """A new client `{type}-{n}`; refused for a type not allowed, or states that would not make an active client."""
        if client_type != CLIENT_TYPE or client_type not in self.allowed_clients:
            raise IbcError("ErrInvalidClientType", f"client type {client_type!r} is not supported "
                           f"(allowed: {', '.join(self.allowed_clients) or 'none'})")
        if client_state.frozen_height:
            raise IbcError("ErrClientNotActive", "cannot create a client: status is Frozen")
        if consensus_state.timestamp_ns + client_state.trusting_period_ns <= now_ns:
            raise IbcError("ErrClientNotActive", "cannot create a client: status is Expired")
        sequence = int(self.store.get(NEXT_CLIENT_SEQUENCE, b"0"))
        client_id = f"{client_type}-{sequence}"
        self.module.initialize(client_id, client_state, consensus_state)
        self.store[NEXT_CLIENT_SEQUENCE] = str(sequence + 1).encode()
        return client_id

    def status(self, client_id: str, now_ns: int) -> str:
        """The client's status, as ibc-go's GetClientStatus: "Unauthorized" once its type is no longer allowed,
        "Unknown" without a client state, "Expired" without a consensus state at its latest height."""
        if client_id.rsplit("-", 1)[0] not in self.allowed_clients:
            return UNAUTHORIZED
        try:
            return self.module.status(client_id, now_ns)
        except IbcError as err:
            return UNKNOWN if err.code == "ErrClientNotFound" else EXPIRED

    def update_client(self, client_id: str, message: Header | Misbehaviour, now_ns: int) -> str:
        """Verifies and applies a header or misbehaviour; returns "updated" or "frozen"."""
        self.module.client_state(client_id)  # ErrClientNotFound first, as ibc-go
        status = self.status(client_id, now_ns)
        if status != ACTIVE:
            raise IbcError("ErrClientNotActive", f"cannot update client {client_id}: status is {status}")
        self.module.verify_client_message(client_id, message, now_ns)
        if self.module.check_for_misbehaviour(client_id, message):
            self.module.update_state_on_misbehaviour(client_id)
            return "frozen"
        if isinstance(message, Misbehaviour):
            raise IbcError("ErrInvalidHeader", "the two headers agree: no misbehaviour")
        self.module.update_state(client_id, message, now_ns)
        return "updated"

    def recover_client(self, subject_id: str, substitute_id: str, now_ns: int) -> None:
        """RecoverClient, as ibc-go's keeper (a governance action there, an operator's here): a subject that is not
        Active takes over the state of an Active substitute client of the same chain with a higher latest height."""
        if self.status(subject_id, now_ns) == ACTIVE:
            raise IbcError("ErrInvalidRecoveryClient", f"cannot recover {subject_id}: it is Active")
        status = self.status(substitute_id, now_ns)
        if status != ACTIVE:
            raise IbcError("ErrClientNotActive", f"substitute {substitute_id} is {status}, not Active")
        subject_height, substitute_height = self.module.latest_height(subject_id), self.module.latest_height(substitute_id)
        if subject_height >= substitute_height:
            raise IbcError("ErrInvalidHeight", f"the subject's latest height {subject_height} is not below the "
                           f"substitute's {substitute_height}")
        self.module.recover_client(subject_id, substitute_id)
