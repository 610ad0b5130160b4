"""A hook for aiosmpplib (the independent client of the interop tests) that keeps every PDU it received, raw:
its own correlator folds the receipts of a long message's parts into one message, the tests need each part."""

from __future__ import annotations

from aiosmpplib import AbstractHook, SmppMessage


class RecordingHook(AbstractHook):  # type: ignore[misc]
    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.messages: list[SmppMessage] = []
        self.errors: list[Exception] = []

    async def sending(self, smpp_message: SmppMessage, pdu: bytes, client_id: str) -> None:
        pass

    async def received(self, smpp_message: SmppMessage | None, pdu: bytes, client_id: str) -> None:
        self.raw.append(pdu)
        if smpp_message is not None:
            self.messages.append(smpp_message)

    async def send_error(self, smpp_message: SmppMessage, error: Exception, client_id: str) -> None:
        self.errors.append(error)
