"""`smppgw run --smpp-listen/--http-listen`: the container's listeners override the config's, validated."""

from __future__ import annotations

import pytest

from smppgw.commands import _with_listeners
from smppgw.config import default_config


def test_listen_flags_override_and_are_validated() -> None:
    config = _with_listeners(default_config(), "0.0.0.0:2775", "[::]:8080")
    assert config.smpp_server.listen == "0.0.0.0:2775" and config.http.listen == "[::]:8080"
    assert _with_listeners(default_config(), None, None) == default_config()
    with pytest.raises(ValueError):
        _with_listeners(default_config(), "2775", None)
