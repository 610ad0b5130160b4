"""The daemon honours its [log] section end to end: ``smppgw run`` with level "warning" and format "json" writes
no info/debug lines for ordinary traffic, every line is JSON, and no subscriber number appears unmasked."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from smppgw.smpp.constants import CommandStatus

from .helpers import UNALLOCATED, eventually, free_port, number, running_operators
from .test_crash import bind_when_up, gateway_process, gateway_toml, wait_exit


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_log_section_is_honoured(tmp_path: Path) -> None:
    """Regression: ``get_logger`` used to bind at import time, before ``configure_logging`` ran in ``smppgw run``,
    so module loggers kept structlog's defaults: every level (debug included), console format, and no
    ``mask_personal_data`` (152-FZ: numbers unmasked)."""
    async with running_operators() as ops:
        port = free_port()
        config = gateway_toml(tmp_path, port, {name: op.sim.port for name, op in ops.items()})
        text = config.read_text().replace('level = "error"', 'level = "warning"\nformat = "json"')
        config.write_text(text)
        log = tmp_path / "gateway.log"
        with gateway_process(config, log) as proc:
            esme = await bind_when_up(port, proc, log)
            assert (await esme.submit(UNALLOCATED, "refused")).status == CommandStatus.ESME_RINVDSTADR
            assert (await esme.submit(number("mts", 1234567), "fine")).status == CommandStatus.ESME_ROK
            await eventually(lambda: len(esme.receipts()) == 1, what="receipt")
            await esme.close()
            proc.send_signal(signal.SIGTERM)
            assert await wait_exit(proc, 10.0) == 0
    lines = [line for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert not [line for line in lines if UNALLOCATED in line or number("mts", 1234567) in line], lines
    for line in lines:
        record = json.loads(line)  # format = "json"
        assert record["level"] in ("warning", "error", "critical"), line
