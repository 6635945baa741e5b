"""Real devices at the node: one interface (`base.Device`), an adapter per protocol."""
