"""Sending policies applied to each message (DESIGN §5): the stop list, collection caps and recipient-local hours.

The pure pieces live in ``smppgw.core.policy``; this module binds them to accounts and messages and turns a refusal into
the status the account configured. Only classes with a policy pay for it: an OTP costs one dict lookup.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from smppgw.config import AccountConfig, CapsConfig, PolicyConfig
from smppgw.core.message import Message, TrafficClass
from smppgw.core.numbering import NumberInfo
from smppgw.core.policy.caps import CapExceededError, CapLedger, CapLimits, limits_for
from smppgw.core.policy.stoplist import StopList
from smppgw.core.policy.windows import QuietHours, SendWindows

from .errors import SubmitRefusedError

DEFAULT_ZONES = ("Europe/Moscow",)
"""Zones assumed for a number the plan does not place (a foreign number)."""


class Slot(NamedTuple):
    """When a message may go out: from ``opens`` until ``closes`` (``inf``: no window applies)."""

    opens: float
    closes: float


class Policies:
    """The gateway's policy state: stop list, cap ledger, windows per class."""

    def __init__(self, config: PolicyConfig, windows: SendWindows, accounts: Mapping[str, AccountConfig]) -> None:
        self.config = config
        self.windows = windows
        self.stoplist = StopList()
        self.ledger = CapLedger()
        self.stop_classes = frozenset(TrafficClass(c) for c in config.stoplist_classes)
        self.hours: dict[TrafficClass, QuietHours] = {}
        for klass in TrafficClass:
            hours = config.hours_for(klass.value)
            if hours is not None:
                self.hours[klass] = QuietHours.from_config(hours)
        self._caps: dict[str, CapsConfig] = {
            name: account.collection_caps or config.collection_caps for name, account in accounts.items()
        }
        self._scopes = {name: account.stoplist or name for name, account in accounts.items()}
        self._mo_scopes = {address: self._scopes[name] for name, a in accounts.items() for address in a.mo_addresses}
        self._keywords = frozenset(k.strip().casefold() for k in config.mo_stop_keywords)

    # ------------------------------------------------------------------ stop list

    def scope_of(self, account: str) -> str:
        return self._scopes.get(account, account)

    def stopped_by(self, message: Message) -> str | None:
        """The stop-list scope that forbids ``message`` (its class is stop-listed and its account's brand list or
        the global list holds the number), or None."""
        if message.traffic_class not in self.stop_classes or not self.stoplist:
            return None
        return self.stoplist.stopped(self.scope_of(message.account), message.dest)

    def check_stop_list(self, account: AccountConfig, message: Message) -> None:
        """Refuse a message of a stop-listed class to a number its brand's (or the global) stop list holds."""
        scope = self.stopped_by(message)
        if scope is not None:
            which = "the global stop list" if scope == "*" else "the account's stop list"
            raise SubmitRefusedError(account.stop_listed_status, "stop_listed", f"the recipient is on {which}")

    def mo_stop_scope(self, text: str, destination_addr: str) -> str | None:
        """The stop-list scope an MO text asks to join ("STOP" to a brand's short code), or None if it is not a stop
        keyword. An MO to an address no account claims stops the sender globally."""
        if text.strip().casefold() not in self._keywords:
            return None
        return self._mo_scopes.get(destination_addr, "*")

    # ------------------------------------------------------------------ windows

    def slot(self, message: Message, info: NumberInfo | None, at: float) -> Slot | None:
        """The first window at or after ``at`` in which ``message`` may go out; None if none opens in the horizon."""
        hours = self.hours.get(message.traffic_class)
        if hours is None:
            return Slot(at, math.inf)
        zones = info.tz_candidates if info is not None else DEFAULT_ZONES
        span = self.windows.next_span(hours, zones, at, info.region if info is not None else None)
        return None if span is None else Slot(*span)

    # ------------------------------------------------------------------ caps

    def limits(self, message: Message) -> CapLimits:
        """The collection caps that apply to ``message`` (its account's, by its overdue days)."""
        caps = self._caps.get(message.account, self.config.collection_caps)
        return limits_for(caps, message.overdue_days)

    def reserve_cap(self, account: AccountConfig, message: Message, info: NumberInfo | None, at: float) -> None:
        """Take a collection slot on the recipient-local day of ``at`` (the planned send time), or refuse."""
        if message.traffic_class is not TrafficClass.COLLECTION:
            return
        day = local_day(info, at)
        key = (account.system_id, message.dest)
        try:
            self.ledger.check(key, day, self.limits(message))
        except CapExceededError as exc:
            raise SubmitRefusedError(account.cap_exceeded_status, "cap_exceeded", str(exc)) from None
        self.ledger.reserve(key, day, message.id)

    def move_cap(self, message: Message, info: NumberInfo | None, at: float, elsewhere: Iterable[int] = ()) -> bool:
        """Move the message's reservation to the local day of ``at`` (it goes out later than planned); False if
        that day is full (hold it for a later day). ``elsewhere``: the recipient's days other workers reserved."""
        day = local_day(info, at)
        current = self.ledger.day_of(message.id)
        if current is None or current == day:
            return True
        try:
            self.ledger.move(message.id, day, self.limits(message), elsewhere)
        except CapExceededError:
            return False
        return True


def next_local_day(info: NumberInfo | None, at: float) -> float:
    """The first instant of the recipient-local day after the one containing ``at``."""
    zone = ZoneInfo(info.tz if info is not None else DEFAULT_ZONES[0])
    local = datetime.fromtimestamp(at, zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
    return midnight.timestamp()


def local_day(info: NumberInfo | None, at: float) -> int:
    """The recipient-local calendar day of ``at`` as an ordinal (the number's main zone)."""
    zone = info.tz if info is not None else DEFAULT_ZONES[0]
    return datetime.fromtimestamp(at, ZoneInfo(zone)).date().toordinal()
