"""The household oracle: sample the meter at interval boundaries, sign, keep in a durable outbox, send.

Data flows one way: gateway → sampler → signer → outbox (SQLite, written before anything is sent) →
sender (direct transaction or relay) → confirmed only once the chain has the reading. A reading the chain
will never take but a later one covers (before the meter's first interval, above its limits) is held, and
covered once that later one is confirmed; limits exceeded raise an alert for the PMO.
"""
