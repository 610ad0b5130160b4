"""Upstream side: ESMEs (the lenders' systems) bind to us; receipts go back to their receiver sessions.

Authentication: system_id + password (constant-time compare), allowed source addresses, bind count; repeated
failures from one address are refused for a while without checking (ESME_RBINDFAIL), so a password cannot be
guessed at line rate. Receipts owed to an account wait (durably: ``receipt_due`` in the store) until one of its
rx/trx sessions is bound, then go out within that session's window; a failed delivery is retried with backoff.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time
from collections import deque
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from smppgw.core.message import SMPP_STATE_OF, Message
from smppgw.net.connection import ConnectionHandler, SmppConnection
from smppgw.obs.logging import get_logger
from smppgw.smpp.constants import CommandStatus, EsmClass, MessageState, Tag
from smppgw.smpp.pdu import (
    CancelSm,
    DataSm,
    DataSmResp,
    DeliverSm,
    Pdu,
    QuerySm,
    SubmitSm,
    SubmitSmResp,
    _Bind,
    response_type_for,
    tlv_cstr,
    tlv_int,
)
from smppgw.smpp.receipt import format_receipt_text
from smppgw.smpp.session import State as SessionState

from .errors import SubmitRefusedError

if TYPE_CHECKING:
    from .gateway import Account, Gateway, Stored

log = get_logger("smppgw.upstream")

MAX_FAILED_BINDS = 5
FAILED_BIND_WINDOW = 60.0
"""After 5 wrong passwords (or unknown system_ids) within 60 s from one address for one system_id, that pair is
refused without a password check until the window passes. Keyed by the pair, so a misconfigured client behind the
same NAT cannot lock out other accounts; other refusals (bind limit, address not allowed) do not count."""
MAX_TRACKED_FAILURES = 10_000
_CREDENTIAL_FAILURES = frozenset({CommandStatus.ESME_RINVPASWD, CommandStatus.ESME_RINVSYSID})


class UpstreamHandler(ConnectionHandler):
    """The SMPP server's handler: one instance serves every upstream connection."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.account_of: dict[SmppConnection, Account] = {}
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self.bind_failures = 0
        self._tasks: set[asyncio.Task[None]] = set()  # requests answered after a read (query_sm, cancel_sm)

    def on_bind_request(self, conn: SmppConnection, pdu: _Bind) -> None:
        status = self._authenticate(conn, pdu)
        if status != CommandStatus.ESME_ROK:
            self.bind_failures += 1
            if status in _CREDENTIAL_FAILURES:
                key = (_host(conn.peer), pdu.system_id)
                if key not in self._failures and len(self._failures) >= MAX_TRACKED_FAILURES:
                    del self._failures[next(iter(self._failures))]  # bounded: forget the oldest pair
                self._failures.setdefault(key, deque(maxlen=MAX_FAILED_BINDS)).append(time.monotonic())
            log.info("bind_refused", system_id=pdu.system_id, peer=conn.peer, status=f"0x{status:02X}")
            conn.reject_bind(status)
            return
        account = self.gateway.accounts[pdu.system_id]
        self.account_of[conn] = account
        account.sessions.append(conn)
        conn.accept_bind("smppgw")
        log.info("bound", system_id=pdu.system_id, peer=conn.peer, mode=type(pdu).__name__)

    def _authenticate(self, conn: SmppConnection, pdu: _Bind) -> int:
        recent = self._failures.get((_host(conn.peer), pdu.system_id))
        now = time.monotonic()
        while recent and recent[0] < now - FAILED_BIND_WINDOW:
            recent.popleft()
        if recent is not None and len(recent) >= MAX_FAILED_BINDS:
            return CommandStatus.ESME_RBINDFAIL
        account = self.gateway.accounts.get(pdu.system_id)
        if account is None:
            return CommandStatus.ESME_RINVSYSID
        if not hmac.compare_digest(pdu.password.encode(), account.config.password.encode()):
            return CommandStatus.ESME_RINVPASWD
        if account.config.allowed_ips and not _address_allowed(_host(conn.peer), account.config.allowed_ips):
            return CommandStatus.ESME_RBINDFAIL
        if len(account.sessions) >= account.config.max_binds:
            return CommandStatus.ESME_RBINDFAIL
        return CommandStatus.ESME_ROK

    def on_bound(self, conn: SmppConnection) -> None:
        account = self.account_of.get(conn)
        if account is not None:
            self.gateway.upstream.session_ready(account)

    def on_request(self, conn: SmppConnection, pdu: Pdu) -> None:
        account = self.account_of.get(conn)
        if account is None:  # cannot happen: the session refuses requests before bind
            conn.send_response(
                response_type_for(pdu.command_id)(sequence=pdu.sequence, status=CommandStatus.ESME_RINVBNDSTS)
            )
            return
        if isinstance(pdu, SubmitSm | DataSm):
            self._submit(conn, account, pdu)
        elif isinstance(pdu, QuerySm):
            self._answer_later(self._query(conn, account, pdu))
        elif isinstance(pdu, CancelSm):
            if self.gateway.owned_elsewhere(pdu.message_id):
                self._answer_later(self._cancel_elsewhere(conn, account, pdu))
            else:
                conn.send_response(self.gateway.cancel(account, pdu))
        else:  # submit_multi, replace_sm: not offered by this gateway
            status = CommandStatus.ESME_RSUBMITFAIL if pdu.command_id == 0x21 else CommandStatus.ESME_RREPLACEFAIL
            conn.send_response(response_type_for(pdu.command_id)(sequence=pdu.sequence, status=status))

    def _submit(self, conn: SmppConnection, account: Account, pdu: SubmitSm | DataSm) -> None:
        reply = SubmitSmResp if isinstance(pdu, SubmitSm) else DataSmResp
        try:
            message = self.gateway.accept_submit(account, pdu)
        except SubmitRefusedError as exc:
            self.gateway.reject(exc.code)
            log.debug("submit_rejected", system_id=account.config.system_id, code=exc.code, detail=str(exc))
            conn.send_response(reply(sequence=pdu.sequence, status=exc.status))
            return
        sequence = pdu.sequence

        def acknowledge(outcome: Stored) -> None:
            if outcome is True:
                conn.send_response(reply(sequence=sequence, message_id=message.id))
            elif outcome is False:
                conn.send_response(reply(sequence=sequence, status=CommandStatus.ESME_RSYSERR))
            else:  # refused at commit (another worker took the last cap slot)
                conn.send_response(reply(sequence=sequence, status=outcome.status))

        self.gateway.persist(message, acknowledge)

    def _answer_later(self, answer: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(answer)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop_answering(self) -> None:
        """At shutdown, before the store closes: requests still reading it are dropped (their sessions are going)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _query(self, conn: SmppConnection, account: Account, pdu: QuerySm) -> None:
        conn.send_response(await self.gateway.query(account, pdu))

    async def _cancel_elsewhere(self, conn: SmppConnection, account: Account, pdu: CancelSm) -> None:
        conn.send_response(await self.gateway.cancel_elsewhere(account, pdu))

    def on_closed(self, conn: SmppConnection, reason: str) -> None:
        account = self.account_of.pop(conn, None)
        if account is not None and conn in account.sessions:
            account.sessions.remove(conn)
            self.gateway.upstream.session_closed(account)
            log.info("unbound", system_id=account.config.system_id, peer=conn.peer, reason=reason)


class UpstreamReceipts:
    """Receipts owed to accounts: delivered on their rx/trx sessions, retried, acknowledged durably."""

    def __init__(self, gateway: Gateway, *, retry_delay: float = 5.0, max_pending: int = 1_000_000) -> None:
        self.gateway = gateway
        self.retry_delay = retry_delay
        self.max_pending = max_pending
        self.pending: dict[str, deque[Message]] = {}
        self.pending_count = 0
        self.sent = 0
        self.acknowledged = 0
        self.failed_attempts = 0
        self.dropped = 0
        self.handed_off = 0
        self.leased: set[str] = set()  # messages of other workers whose receipts this worker took to deliver

    def deliver(self, message: Message) -> None:
        account = self.gateway.accounts.get(message.account)
        if self.gateway.worker.shared and (account is None or not _receivers(account)):
            self.hand_off(message)  # another worker may hold the account's receiver session
            return
        queue = self.pending.setdefault(message.account, deque())
        if self.pending_count >= self.max_pending:
            self.dropped += 1  # still due in the store: re-sent after a restart (or taken by another worker)
            if message.id in self.leased:
                self.hand_off(message)
            return
        queue.append(message)
        self.pending_count += 1
        if account is not None:
            self.session_ready(account)

    def can_deliver(self, account: Account) -> bool:
        """Whether this worker has a receiver session of ``account`` (to claim receipts others left for it)."""
        return bool(_receivers(account))

    def take_leased(self, message: Message) -> None:
        """A receipt another worker left and this one took (leased) to deliver."""
        self.leased.add(message.id)
        self.deliver(message)

    def hand_off(self, message: Message) -> None:
        """Leave the receipt for whichever worker holds a receiver session of its account (it stays due in the
        store meanwhile, so a crash on either side loses nothing); one this worker had taken is given back."""
        self.handed_off += 1
        if message.id in self.leased:
            self.leased.discard(message.id)
            self.gateway.store.release_delivery(message.id)
        else:
            self.gateway.store.handoff_delivery(message.id, message.account)

    def session_closed(self, account: Account) -> None:
        """With several workers, what waits for the account's last local receiver goes to the others."""
        if not self.gateway.worker.shared or _receivers(account):
            return
        queue = self.pending.pop(account.config.system_id, None)
        while queue:
            self.pending_count -= 1
            self.hand_off(queue.popleft())

    def session_ready(self, account: Account) -> None:
        """Send what the account is owed on its receiver sessions, within their windows."""
        queue = self.pending.get(account.config.system_id)
        if not queue:
            return
        receivers = _receivers(account)
        oldest = time.time() - self.gateway.config.smpp_server.receipt_max_age
        for conn in receivers:
            while queue and conn.has_free_slot:
                message = queue.popleft()
                self.pending_count -= 1
                if (message.done_at or message.created_at) < oldest:
                    self.dropped += 1
                    self.leased.discard(message.id)
                    self.gateway.store.receipt_abandoned(message.id)
                    continue
                conn.send_request(_receipt_pdu(message), _ReceiptSent(self, account, message))
                self.sent += 1

    def _on_result(self, account: Account, message: Message, response: Pdu | None, error: BaseException | None) -> None:
        if error is None and response is not None and response.status == CommandStatus.ESME_ROK:
            self.acknowledged += 1
            self.leased.discard(message.id)
            self.gateway.store.receipt_delivered(message.id, time.time())
        else:
            self.failed_attempts += 1
            loop = asyncio.get_running_loop()
            loop.call_later(self.retry_delay, self.deliver, message)
        self.session_ready(account)


class _ReceiptSent:
    __slots__ = ("account", "message", "owner")

    def __init__(self, owner: UpstreamReceipts, account: Account, message: Message) -> None:
        self.owner = owner
        self.account = account
        self.message = message

    def __call__(self, response: Pdu | None, error: BaseException | None) -> None:
        self.owner._on_result(self.account, self.message, response, error)


def _receipt_pdu(message: Message) -> DeliverSm:
    """Our receipt for ``message``: our id, source and destination swapped, text and TLVs (SMPP 3.4 appendix B)."""
    state = SMPP_STATE_OF.get(message.state, MessageState.UNKNOWN)
    submitted = datetime.fromtimestamp(message.created_at, UTC)
    done = datetime.fromtimestamp(message.done_at or message.created_at, UTC)
    delivered = 1 if state is MessageState.DELIVERED else 0
    text = format_receipt_text(
        message.id,
        state,
        submit_date=submitted,
        done_date=done,
        submitted=1,
        delivered=delivered,
        err=min(message.status, 999),
    )
    return DeliverSm(
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr=message.dest,
        dest_addr_ton=message.source_ton,
        dest_addr_npi=message.source_npi,
        destination_addr=message.source_addr,
        esm_class=EsmClass.TYPE_SMSC_DELIVERY_RECEIPT,
        short_message=text.encode("ascii", "replace"),
        tlvs=(tlv_cstr(Tag.RECEIPTED_MESSAGE_ID, message.id), tlv_int(Tag.MESSAGE_STATE, state, 1)),
    )


def _receivers(account: Account) -> list[SmppConnection]:
    return [c for c in account.sessions if c.is_bound and _can_receive(c)]


def _can_receive(conn: SmppConnection) -> bool:
    return conn.session.state in (SessionState.BOUND_RX, SessionState.BOUND_TRX)


def _host(peer: str) -> str:
    return peer.rsplit(":", 1)[0].strip("[]")


def _address_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in allowed)
