"""What "reached the handset": submitted parts reassembled (UDH 8/16-bit, SAR, message_payload) and decoded.

Off by default (decoding every message costs CPU). Tests read ``HandsetRecorder.messages`` to check the exact text a
subscriber would see; the CLI can also append each message as a JSON line to a file.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final

import msgspec

from smppgw.smpp.concat import ConcatError, Partial, Reassembler, read_concat_info
from smppgw.smpp.constants import Tag
from smppgw.smpp.text import decode_short_message

_PAYLOAD: Final = int(Tag.MESSAGE_PAYLOAD)


class HandsetMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One complete message as the recipient sees it. ``message_ids`` are the parts' ids in part order."""

    system_id: str
    source_addr: str
    destination_addr: str
    data_coding: int
    text: str
    parts: int
    message_ids: tuple[str, ...]
    complete: bool = True
    """False for a message whose missing parts never came (expired or evicted): the parts that did, joined."""


class HandsetRecorder:
    """Feed every accepted message part with ``add``; complete messages land in ``messages`` (bounded)."""

    def __init__(
        self,
        *,
        limit: int,
        max_pending: int = 10_000,
        ttl: float = 300.0,
        on_message: Callable[[HandsetMessage], None] | None = None,
    ) -> None:
        self.messages: deque[HandsetMessage] = deque(maxlen=max(1, limit))
        self.total = 0
        self.errors = 0  # malformed concatenation data
        self._reassembler = Reassembler(max_pending=max_pending, ttl=ttl)
        self._meta: dict[tuple[object, int, int], tuple[int, dict[int, str]]] = {}
        """(key, reference, total) -> (data_coding of the first part, {seqnum: message id})."""
        self._on_message = on_message

    def add(
        self,
        system_id: str,
        *,
        source_addr: str,
        destination_addr: str,
        esm_class: int,
        data_coding: int,
        short_message: bytes,
        tlvs: tuple[tuple[int, bytes], ...],
        message_id: str,
        now: float,
    ) -> None:
        try:
            info = read_concat_info(short_message, esm_class, tlvs)
        except ConcatError:
            self.errors += 1
            return
        key = (system_id, source_addr, destination_addr)
        if info is None:
            payload = short_message
            if not payload:
                payload = next((value for tag, value in tlvs if tag == _PAYLOAD), b"")
            self._emit(key, data_coding, payload, 1, (message_id,))
            return
        full_key = (key, info.reference, info.total)
        first_coding, ids = self._meta.setdefault(full_key, (data_coding, {}))
        ids.setdefault(info.seqnum, message_id)
        added = self._reassembler.add(key, info, now)
        if added.evicted is not None:
            self._emit_partial(added.evicted)
        if added.payload is not None:
            del self._meta[full_key]
            self._emit(key, first_coding, added.payload, info.total, tuple(ids[seq] for seq in sorted(ids)))

    def expire(self, now: float) -> None:
        """Emit (as incomplete) messages whose parts stopped arriving ``ttl`` seconds ago."""
        for partial in self._reassembler.expire(now):
            self._emit_partial(partial)

    def _emit_partial(self, partial: Partial) -> None:
        data_coding, ids = self._meta.pop((partial.key, partial.reference, partial.total), (0, {}))
        payload = b"".join(chunk for _, chunk in partial.parts)
        key = partial.key
        assert isinstance(key, tuple)
        message_ids = tuple(ids[seq] for seq in sorted(ids))
        self._emit(key, data_coding, payload, partial.total, message_ids, complete=False)

    def _emit(
        self,
        key: tuple[str, str, str],
        data_coding: int,
        payload: bytes,
        parts: int,
        message_ids: tuple[str, ...],
        *,
        complete: bool = True,
    ) -> None:
        system_id, source, destination = key
        message = HandsetMessage(
            system_id=system_id,
            source_addr=source,
            destination_addr=destination,
            data_coding=data_coding,
            text=decode_short_message(payload, data_coding),
            parts=parts,
            message_ids=message_ids,
            complete=complete,
        )
        self.messages.append(message)
        self.total += 1
        if self._on_message is not None:
            self._on_message(message)
