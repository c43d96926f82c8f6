"""The household oracle: sample the meter at interval boundaries, sign, keep in a durable outbox, send.

Data flows one way: gateway → sampler → signer → outbox (SQLite, written before anything is sent) →
sender (direct transaction or relay) → confirmed only once the chain has the reading.
"""
