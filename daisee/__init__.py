"""daisee: neighbourhood energy sharing on Ethereum.

Signed meter readings, allocation keys and settlement for collective self-consumption loops.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("daisee")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
