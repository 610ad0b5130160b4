"""smppgw: a high-throughput SMPP 3.4 gateway daemon."""

__version__ = "0.1.0"
