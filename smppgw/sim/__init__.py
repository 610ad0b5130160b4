"""The built-in SMSC simulator (``smppgw sim``): accepts binds and messages, answers with configurable latency and
faults, and sends delivery receipts for every part. Uses ``smpp``, ``net`` and ``obs`` only, never the gateway core.

Embedding::

    sim = Simulator(SimConfig(receipts=ReceiptConfig(delay_ms=Delay.parse("uniform:50-200"))))
    await sim.start("127.0.0.1", 0)
    ...  # bind to sim.port; read sim.stats / sim.snapshot() / sim.handset
    await sim.close()
"""

from .config import (
    Account,
    ConfigError,
    Delay,
    FaultConfig,
    ReceiptConfig,
    ResponseConfig,
    SimConfig,
    StatMix,
    config_from_dict,
    load_profile,
)
from .handset import HandsetMessage, HandsetRecorder
from .simulator import Simulator
from .stats import SimStats

__all__ = [
    "Account",
    "ConfigError",
    "Delay",
    "FaultConfig",
    "HandsetMessage",
    "HandsetRecorder",
    "ReceiptConfig",
    "ResponseConfig",
    "SimConfig",
    "SimStats",
    "Simulator",
    "StatMix",
    "config_from_dict",
    "load_profile",
]
