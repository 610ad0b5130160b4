"""The gateway's message: states of its life (DESIGN §1), traffic classes, and the record kept for each one."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Final

import msgspec

from smppgw.smpp.concat import Part
from smppgw.smpp.constants import MessageState


class State(StrEnum):
    """ACCEPTED → QUEUED (or SCHEDULED / HELD) → SUBMITTING → SUBMITTED → a final state."""

    ACCEPTED = "accepted"  # persisted and acknowledged to the client
    QUEUED = "queued"  # routed, waiting for a token and a window slot
    SCHEDULED = "scheduled"  # waiting for its send time
    HELD = "held"  # waiting for a policy window (quiet hours)
    SUBMITTING = "submitting"  # about to be (or being) sent to the operator: fate unknown after a crash
    SUBMITTED = "submitted"  # every segment has an SMSC message id
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    EXPIRED = "expired"
    REJECTED = "rejected"
    DELETED = "deleted"
    UNKNOWN = "unknown"
    FAILED = "failed"  # the gateway could not submit it (with the SMPP status)

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES: Final = frozenset(
    {State.DELIVERED, State.UNDELIVERABLE, State.EXPIRED, State.REJECTED, State.DELETED, State.UNKNOWN, State.FAILED}
)


SMPP_STATE_OF: Final[dict[State, MessageState]] = {
    State.ACCEPTED: MessageState.ACCEPTED,
    State.QUEUED: MessageState.ENROUTE,
    State.SCHEDULED: MessageState.ENROUTE,
    State.HELD: MessageState.ENROUTE,
    State.SUBMITTING: MessageState.ENROUTE,
    State.SUBMITTED: MessageState.ENROUTE,
    State.DELIVERED: MessageState.DELIVERED,
    State.UNDELIVERABLE: MessageState.UNDELIVERABLE,
    State.EXPIRED: MessageState.EXPIRED,
    State.REJECTED: MessageState.REJECTED,
    State.DELETED: MessageState.DELETED,
    State.UNKNOWN: MessageState.UNKNOWN,
    State.FAILED: MessageState.UNDELIVERABLE,
}
"""How a gateway state reads in SMPP (query_sm_resp message_state, receipts sent upstream). FAILED reads as
UNDELIVERABLE: the gateway could not deliver it."""


class TrafficClass(StrEnum):
    """Operators price and route these apart; OTP goes first."""

    OTP = "otp"
    TRANSACTIONAL = "transactional"
    SERVICE = "service"
    MARKETING = "marketing"
    COLLECTION = "collection"


LANE_OF_CLASS: Final[dict[TrafficClass, int]] = {
    TrafficClass.OTP: 0,
    TrafficClass.TRANSACTIONAL: 0,
    TrafficClass.SERVICE: 1,
    TrafficClass.COLLECTION: 1,
    TrafficClass.MARKETING: 2,
}
"""Priority lane per class: lane 0 never waits behind lane 2 on the same connector."""


class Message(msgspec.Struct, kw_only=True, gc=False):
    """A message the gateway accepted. Mutable: its state and per-part SMSC ids change during its life.

    ``text`` is the decoded text when the gateway segments it; ``payload`` carries a client's pre-built part
    (UDH or SAR concatenation passed through, binary data) that is sent as is.

    Not tracked by the cyclic GC (``gc=False``): it holds only strings, numbers, bytes and lists of those, so it
    can never be part of a reference cycle, and a million of them awaiting receipts are not traversed by every
    full collection."""

    id: str
    account: str
    origin: str  # "smpp" or "http"
    source_addr: str
    source_ton: int
    source_npi: int
    dest: str  # normalised international digits
    traffic_class: TrafficClass
    priority: int = 0
    registered_delivery: bool = False
    text: str | None = None
    payload: bytes | None = None
    data_coding: int = 0
    esm_class: int = 0
    tlvs: tuple[tuple[int, bytes], ...] = ()  # passed-through TLVs (SAR) for a payload message
    segments: int = 1
    connector: str = ""
    operator: str = ""
    created_at: float = 0.0
    send_at: float | None = None
    expires_at: float = 0.0
    client_ref: str | None = None
    callback_url: str | None = None
    state: State = State.ACCEPTED
    status: int = 0  # SMPP status of a failure
    smsc_ids: list[str | None] = msgspec.field(default_factory=list)
    part_states: list[str | None] = msgspec.field(default_factory=list)
    submitted_at: float | None = None
    done_at: float | None = None
    wire_parts: tuple[Part, ...] = ()  # the parts as built for the connector (not persisted: rebuilt after a restart)
    retries: int = 0  # transient errors so far (not throttling)
    queue_order: int = 0  # position in its connector's queue (retried parts keep it, so order survives throttling)
    overdue_days: int = 0  # collection: days the debt is overdue (sets the daily cap)
    window_end: float = math.inf  # when its sending window closes (quiet hours); not persisted, recomputed
    recheck: bool = False  # policies must be checked again just before it is sent (stop list); not persisted


class MessageIdGenerator:
    """Unique, sortable, restart-safe 16-hex-digit ids: milliseconds since the epoch × 4096 + a counter.

    The caller passes the wall clock in milliseconds; ids stay increasing if the clock stalls or steps back. With
    ``count`` workers, worker ``index`` takes only ids ≡ index (mod count), so workers never collide and the owner of
    an id is its residue; ``floor`` is the highest id already used by any worker."""

    __slots__ = ("_count", "_index", "_last")

    def __init__(self, floor: int = 0, *, index: int = 0, count: int = 1) -> None:
        self._index = index
        self._count = count
        self._last = floor - ((floor - index) % count) if count > 1 else floor

    def next(self, now_ms: int) -> str:
        candidate = now_ms << 12
        count = self._count
        if count > 1:
            candidate += (self._index - candidate) % count
        self._last = candidate if candidate > self._last else self._last + count
        return f"{self._last:016x}"
