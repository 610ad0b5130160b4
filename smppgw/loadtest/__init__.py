"""The load generator: open-loop submit_sm at a target rate over N binds, receipts correlated, a report.

Embedding::

    report = await run_load(LoadConfig(host="127.0.0.1", port=2775, system_id="x", count=10_000, rate=2_000))

or ``smppgw loadtest --target HOST:PORT ...`` (see ``cli.py``). Uses only ``smppgw.smpp`` and ``smppgw.net``.
"""

from .config import BindMode, ConfigError, LoadConfig, MessageKind
from .generator import LoadTestError, Progress, run_load
from .report import LoadReport

__all__ = [
    "BindMode",
    "ConfigError",
    "LoadConfig",
    "LoadReport",
    "LoadTestError",
    "MessageKind",
    "Progress",
    "run_load",
]
