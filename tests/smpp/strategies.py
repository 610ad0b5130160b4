"""Hypothesis strategies producing valid PDUs of every SMPP 3.4 type (within the spec's field limits)."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import strategies as st

from smppgw.smpp.constants import Limits
from smppgw.smpp.pdu import (
    ALL_PDU_TYPES,
    AlertNotification,
    DataSm,
    DistributionList,
    Pdu,
    SmeAddress,
    UnsuccessSme,
)

# C-Octet String limits (including the NUL) by field name; data_sm and alert_notification have 65-octet addresses.
_CSTR_LIMITS: dict[str, int] = {
    "system_id": Limits.SYSTEM_ID,
    "password": Limits.PASSWORD,
    "system_type": Limits.SYSTEM_TYPE,
    "address_range": Limits.ADDRESS_RANGE,
    "service_type": Limits.SERVICE_TYPE,
    "source_addr": Limits.ADDR_21,
    "destination_addr": Limits.ADDR_21,
    "esme_addr": Limits.ADDR_65,
    "schedule_delivery_time": Limits.TIME,
    "validity_period": Limits.TIME,
    "final_date": Limits.TIME,
    "message_id": Limits.MESSAGE_ID,
}
_WIDE_ADDRESS_TYPES = (DataSm, AlertNotification)

u8 = st.integers(0, 255)
u32 = st.integers(0, 0xFFFF_FFFF)


def cstr(limit: int) -> st.SearchStrategy[str]:
    """Latin-1 text without NUL, at most ``limit - 1`` characters."""
    return st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=limit - 1)


tlvs = st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40)), max_size=4).map(tuple)
sme_address = st.builds(SmeAddress, u8, u8, cstr(Limits.ADDR_21))
distribution_list = st.builds(DistributionList, cstr(Limits.DL_NAME))
unsuccess_sme = st.builds(UnsuccessSme, u8, u8, cstr(Limits.ADDR_21), u32)


def _field_strategy(cls: type[Pdu], name: str) -> st.SearchStrategy[Any]:
    if name == "sequence":
        return st.integers(1, 0x7FFF_FFFF)
    if name == "status":
        return u32
    if name == "tlvs":
        return tlvs
    if name == "short_message":
        return st.binary(max_size=Limits.SHORT_MESSAGE)
    if name == "dest_addresses":
        return st.lists(st.one_of(sme_address, distribution_list), min_size=1, max_size=5).map(tuple)
    if name == "unsuccess_smes":
        return st.lists(unsuccess_sme, max_size=5).map(tuple)
    if name in _CSTR_LIMITS:
        wide = name in ("source_addr", "destination_addr") and issubclass(cls, _WIDE_ADDRESS_TYPES)
        return cstr(Limits.ADDR_65 if wide else _CSTR_LIMITS[name])
    return u8


def pdus_of(cls: type[Pdu]) -> st.SearchStrategy[Pdu]:
    """Any valid PDU of type ``cls``."""
    fields = {f.name: _field_strategy(cls, f.name) for f in msgspec.structs.fields(cls)}
    return st.fixed_dictionaries(fields).map(lambda kwargs: cls(**kwargs))


any_pdu: st.SearchStrategy[Pdu] = st.one_of([pdus_of(cls) for cls in ALL_PDU_TYPES])
