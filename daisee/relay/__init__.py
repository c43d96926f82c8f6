"""The relay: an HTTP service that verifies signed readings off-chain, queues them in SQLite and submits
them to the loop in batches, so households need neither gas nor a node of their own."""

from daisee.relay.service import Relay, RelaySettings

__all__ = ["Relay", "RelaySettings"]
