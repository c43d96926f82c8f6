"""Members' consents: who may see a meter's curves, for what purpose, until when (see `model`), recorded
on-chain in the ConsentRegistry (see `registry`)."""
