"""signalosd: the SignalOS control-plane daemon."""

__version__ = "0.1.0"
