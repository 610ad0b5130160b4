"""SMPP 3.4 wire constants (specification issue 1.2, sections 5.1-5.3).

Every value here is what goes on the wire; names follow the specification so they can be searched for in it.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from typing import Final

HEADER_SIZE: Final = 16
"""command_length, command_id, command_status, sequence_number: four big-endian uint32 (spec 3.2)."""

RESPONSE_BIT: Final = 0x8000_0000
"""A response's command_id is its request's id with the top bit set (spec 5.1.2.1)."""

MAX_SEQUENCE: Final = 0x7FFF_FFFF
"""sequence_number ranges 0x00000001..0x7FFFFFFF (spec 5.1.4); it wraps to 1."""

DEFAULT_MAX_PDU_SIZE: Final = 64 * 1024
"""A frame larger than this is a framing error. Real PDUs are < 2 KiB; message_payload may carry up to 64 KiB."""

INTERFACE_VERSION_34: Final = 0x34


class CommandId(IntEnum):
    """command_id values (spec 5.1.2.1)."""

    GENERIC_NACK = 0x8000_0000
    BIND_RECEIVER = 0x0000_0001
    BIND_RECEIVER_RESP = 0x8000_0001
    BIND_TRANSMITTER = 0x0000_0002
    BIND_TRANSMITTER_RESP = 0x8000_0002
    QUERY_SM = 0x0000_0003
    QUERY_SM_RESP = 0x8000_0003
    SUBMIT_SM = 0x0000_0004
    SUBMIT_SM_RESP = 0x8000_0004
    DELIVER_SM = 0x0000_0005
    DELIVER_SM_RESP = 0x8000_0005
    UNBIND = 0x0000_0006
    UNBIND_RESP = 0x8000_0006
    REPLACE_SM = 0x0000_0007
    REPLACE_SM_RESP = 0x8000_0007
    CANCEL_SM = 0x0000_0008
    CANCEL_SM_RESP = 0x8000_0008
    BIND_TRANSCEIVER = 0x0000_0009
    BIND_TRANSCEIVER_RESP = 0x8000_0009
    OUTBIND = 0x0000_000B
    ENQUIRE_LINK = 0x0000_0015
    ENQUIRE_LINK_RESP = 0x8000_0015
    SUBMIT_MULTI = 0x0000_0021
    SUBMIT_MULTI_RESP = 0x8000_0021
    ALERT_NOTIFICATION = 0x0000_0102
    DATA_SM = 0x0000_0103
    DATA_SM_RESP = 0x8000_0103

    @property
    def is_response(self) -> bool:
        return bool(self.value & RESPONSE_BIT)


# Requests that expect no response (spec 4.1.7 outbind, 4.12.1 alert_notification) and the generic_nack itself.
COMMANDS_WITHOUT_RESPONSE: Final = frozenset({CommandId.OUTBIND, CommandId.ALERT_NOTIFICATION, CommandId.GENERIC_NACK})


class CommandStatus(IntEnum):
    """command_status / error codes (spec 5.1.3, table 5-2)."""

    ESME_ROK = 0x00
    ESME_RINVMSGLEN = 0x01
    ESME_RINVCMDLEN = 0x02
    ESME_RINVCMDID = 0x03
    ESME_RINVBNDSTS = 0x04
    ESME_RALYBND = 0x05
    ESME_RINVPRTFLG = 0x06
    ESME_RINVREGDLVFLG = 0x07
    ESME_RSYSERR = 0x08
    ESME_RINVSRCADR = 0x0A
    ESME_RINVDSTADR = 0x0B
    ESME_RINVMSGID = 0x0C
    ESME_RBINDFAIL = 0x0D
    ESME_RINVPASWD = 0x0E
    ESME_RINVSYSID = 0x0F
    ESME_RCANCELFAIL = 0x11
    ESME_RREPLACEFAIL = 0x13
    ESME_RMSGQFUL = 0x14
    ESME_RINVSERTYP = 0x15
    ESME_RINVNUMDESTS = 0x33
    ESME_RINVDLNAME = 0x34
    ESME_RINVDESTFLAG = 0x40
    ESME_RINVSUBREP = 0x42
    ESME_RINVESMCLASS = 0x43
    ESME_RCNTSUBDL = 0x44
    ESME_RSUBMITFAIL = 0x45
    ESME_RINVSRCTON = 0x48
    ESME_RINVSRCNPI = 0x49
    ESME_RINVDSTTON = 0x50
    ESME_RINVDSTNPI = 0x51
    ESME_RINVSYSTYP = 0x53
    ESME_RINVREPFLAG = 0x54
    ESME_RINVNUMMSGS = 0x55
    ESME_RTHROTTLED = 0x58
    ESME_RINVSCHED = 0x61
    ESME_RINVEXPIRY = 0x62
    ESME_RINVDFTMSGID = 0x63
    ESME_RX_T_APPN = 0x64
    ESME_RX_P_APPN = 0x65
    ESME_RX_R_APPN = 0x66
    ESME_RQUERYFAIL = 0x67
    ESME_RINVOPTPARSTREAM = 0xC0
    ESME_ROPTPARNOTALLWD = 0xC1
    ESME_RINVPARLEN = 0xC2
    ESME_RMISSINGOPTPARAM = 0xC3
    ESME_RINVOPTPARAMVAL = 0xC4
    ESME_RDELIVERYFAILURE = 0xFE
    ESME_RUNKNOWNERR = 0xFF

    @property
    def description(self) -> str:
        return STATUS_DESCRIPTIONS[self]


STATUS_DESCRIPTIONS: Final[dict[CommandStatus, str]] = {
    CommandStatus.ESME_ROK: "No error",
    CommandStatus.ESME_RINVMSGLEN: "Message length is invalid",
    CommandStatus.ESME_RINVCMDLEN: "Command length is invalid",
    CommandStatus.ESME_RINVCMDID: "Invalid command ID",
    CommandStatus.ESME_RINVBNDSTS: "Incorrect bind status for given command",
    CommandStatus.ESME_RALYBND: "ESME already in bound state",
    CommandStatus.ESME_RINVPRTFLG: "Invalid priority flag",
    CommandStatus.ESME_RINVREGDLVFLG: "Invalid registered delivery flag",
    CommandStatus.ESME_RSYSERR: "System error",
    CommandStatus.ESME_RINVSRCADR: "Invalid source address",
    CommandStatus.ESME_RINVDSTADR: "Invalid destination address",
    CommandStatus.ESME_RINVMSGID: "Message ID is invalid",
    CommandStatus.ESME_RBINDFAIL: "Bind failed",
    CommandStatus.ESME_RINVPASWD: "Invalid password",
    CommandStatus.ESME_RINVSYSID: "Invalid system ID",
    CommandStatus.ESME_RCANCELFAIL: "cancel_sm failed",
    CommandStatus.ESME_RREPLACEFAIL: "replace_sm failed",
    CommandStatus.ESME_RMSGQFUL: "Message queue full",
    CommandStatus.ESME_RINVSERTYP: "Invalid service type",
    CommandStatus.ESME_RINVNUMDESTS: "Invalid number of destinations",
    CommandStatus.ESME_RINVDLNAME: "Invalid distribution list name",
    CommandStatus.ESME_RINVDESTFLAG: "Destination flag is invalid (submit_multi)",
    CommandStatus.ESME_RINVSUBREP: "Invalid 'submit with replace' request",
    CommandStatus.ESME_RINVESMCLASS: "Invalid esm_class field data",
    CommandStatus.ESME_RCNTSUBDL: "Cannot submit to distribution list",
    CommandStatus.ESME_RSUBMITFAIL: "submit_sm or submit_multi failed",
    CommandStatus.ESME_RINVSRCTON: "Invalid source address TON",
    CommandStatus.ESME_RINVSRCNPI: "Invalid source address NPI",
    CommandStatus.ESME_RINVDSTTON: "Invalid destination address TON",
    CommandStatus.ESME_RINVDSTNPI: "Invalid destination address NPI",
    CommandStatus.ESME_RINVSYSTYP: "Invalid system_type field",
    CommandStatus.ESME_RINVREPFLAG: "Invalid replace_if_present flag",
    CommandStatus.ESME_RINVNUMMSGS: "Invalid number of messages",
    CommandStatus.ESME_RTHROTTLED: "Throttling error (ESME has exceeded allowed message limits)",
    CommandStatus.ESME_RINVSCHED: "Invalid scheduled delivery time",
    CommandStatus.ESME_RINVEXPIRY: "Invalid message validity period (expiry time)",
    CommandStatus.ESME_RINVDFTMSGID: "Predefined message invalid or not found",
    CommandStatus.ESME_RX_T_APPN: "ESME receiver temporary app error code",
    CommandStatus.ESME_RX_P_APPN: "ESME receiver permanent app error code",
    CommandStatus.ESME_RX_R_APPN: "ESME receiver reject message error code",
    CommandStatus.ESME_RQUERYFAIL: "query_sm request failed",
    CommandStatus.ESME_RINVOPTPARSTREAM: "Error in the optional part of the PDU body",
    CommandStatus.ESME_ROPTPARNOTALLWD: "Optional parameter not allowed",
    CommandStatus.ESME_RINVPARLEN: "Invalid parameter length",
    CommandStatus.ESME_RMISSINGOPTPARAM: "Expected optional parameter missing",
    CommandStatus.ESME_RINVOPTPARAMVAL: "Invalid optional parameter value",
    CommandStatus.ESME_RDELIVERYFAILURE: "Delivery failure (data_sm_resp)",
    CommandStatus.ESME_RUNKNOWNERR: "Unknown error",
}


def describe_status(status: int) -> str:
    """Name and description of any command_status, including reserved and vendor-specific values."""
    try:
        known = CommandStatus(status)
    except ValueError:
        kind = "vendor-specific" if 0x400 <= status <= 0x4FF else "reserved"
        return f"0x{status:08X} ({kind})"
    return f"{known.name} (0x{status:02X}): {known.description}"


# Statuses after which the same request may succeed later: the sender backs off and retries (not a message fault).
TRANSIENT_STATUSES: Final = frozenset(
    {
        CommandStatus.ESME_RTHROTTLED,
        CommandStatus.ESME_RMSGQFUL,
        CommandStatus.ESME_RSYSERR,
        CommandStatus.ESME_RX_T_APPN,
        CommandStatus.ESME_RUNKNOWNERR,
    }
)


class Ton(IntEnum):
    """Type of number (spec 5.2.5)."""

    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL = 2
    NETWORK_SPECIFIC = 3
    SUBSCRIBER_NUMBER = 4
    ALPHANUMERIC = 5
    ABBREVIATED = 6


class Npi(IntEnum):
    """Numbering plan indicator (spec 5.2.6)."""

    UNKNOWN = 0
    ISDN = 1  # E.163 / E.164
    DATA = 3  # X.121
    TELEX = 4  # F.69
    LAND_MOBILE = 6  # E.212
    NATIONAL = 8
    PRIVATE = 9
    ERMES = 10
    INTERNET = 14  # IP
    WAP_CLIENT_ID = 18


class DataCoding(IntEnum):
    """data_coding values in use (spec 5.2.19); the SMSC default alphabet (0) is configured per connector."""

    SMSC_DEFAULT = 0x00
    IA5_ASCII = 0x01
    OCTET_UNSPECIFIED_2 = 0x02
    LATIN_1 = 0x03
    OCTET_UNSPECIFIED = 0x04
    JIS = 0x05
    CYRILLIC = 0x06
    LATIN_HEBREW = 0x07
    UCS2 = 0x08
    PICTOGRAM = 0x09
    ISO_2022_JP = 0x0A
    EXTENDED_KANJI = 0x0D
    KS_C_5601 = 0x0E
    FLASH_UCS2 = 0x18


class EsmClass(IntFlag):
    """esm_class bit fields (spec 5.2.12). Mode is bits 1-0, type bits 5-2, GSM features bits 7-6."""

    MODE_DEFAULT = 0x00
    MODE_DATAGRAM = 0x01
    MODE_FORWARD = 0x02
    MODE_STORE_AND_FORWARD = 0x03
    TYPE_SMSC_DELIVERY_RECEIPT = 0x04
    TYPE_ESME_DELIVERY_ACK = 0x08
    TYPE_ESME_MANUAL_ACK = 0x10
    TYPE_CONVERSATION_ABORT = 0x18
    TYPE_INTERMEDIATE_NOTIFICATION = 0x20
    UDHI = 0x40
    REPLY_PATH = 0x80


ESM_CLASS_MODE_MASK: Final = 0x03
ESM_CLASS_TYPE_MASK: Final = 0x3C


def is_delivery_receipt(esm_class: int) -> bool:
    """True when a deliver_sm/data_sm carries an SMSC delivery receipt (message type bits 5-2 == 0001)."""
    return esm_class & ESM_CLASS_TYPE_MASK == EsmClass.TYPE_SMSC_DELIVERY_RECEIPT


class RegisteredDelivery(IntFlag):
    """registered_delivery bit fields (spec 5.2.17)."""

    NONE = 0x00
    RECEIPT_ON_SUCCESS_OR_FAILURE = 0x01
    RECEIPT_ON_FAILURE = 0x02
    SME_ACK_DELIVERY = 0x04
    SME_ACK_MANUAL = 0x08
    INTERMEDIATE_NOTIFICATION = 0x10


RECEIPT_MASK: Final = 0x03
"""Bits 1-0 of registered_delivery: 00 no receipt, 01 on success or failure, 10 on failure only."""


class PriorityFlag(IntEnum):
    """priority_flag (spec 5.2.14): 0 lowest .. 3 highest (meaning depends on the network)."""

    LEVEL_0 = 0
    LEVEL_1 = 1
    LEVEL_2 = 2
    LEVEL_3 = 3


class MessageState(IntEnum):
    """message_state (spec 5.2.28); used by query_sm_resp and the message_state TLV of a receipt."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8

    @property
    def is_final(self) -> bool:
        return self in _FINAL_MESSAGE_STATES


_FINAL_MESSAGE_STATES: Final = frozenset({2, 3, 4, 5, 7, 8})  # all but ENROUTE (1) and ACCEPTED (6); ints hash alike


class DestFlag(IntEnum):
    """dest_flag of a submit_multi destination (spec 5.2.25)."""

    SME_ADDRESS = 1
    DISTRIBUTION_LIST = 2


class Tag(IntEnum):
    """Optional parameter (TLV) tags (spec 5.3.2, table 5-6)."""

    DEST_ADDR_SUBUNIT = 0x0005
    DEST_NETWORK_TYPE = 0x0006
    DEST_BEARER_TYPE = 0x0007
    DEST_TELEMATICS_ID = 0x0008
    SOURCE_ADDR_SUBUNIT = 0x000D
    SOURCE_NETWORK_TYPE = 0x000E
    SOURCE_BEARER_TYPE = 0x000F
    SOURCE_TELEMATICS_ID = 0x0010
    QOS_TIME_TO_LIVE = 0x0017
    PAYLOAD_TYPE = 0x0019
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D
    RECEIPTED_MESSAGE_ID = 0x001E
    MS_MSG_WAIT_FACILITIES = 0x0030
    PRIVACY_INDICATOR = 0x0201
    SOURCE_SUBADDRESS = 0x0202
    DEST_SUBADDRESS = 0x0203
    USER_MESSAGE_REFERENCE = 0x0204
    USER_RESPONSE_CODE = 0x0205
    SOURCE_PORT = 0x020A
    DESTINATION_PORT = 0x020B
    SAR_MSG_REF_NUM = 0x020C
    LANGUAGE_INDICATOR = 0x020D
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    CALLBACK_NUM_PRES_IND = 0x0302
    CALLBACK_NUM_ATAG = 0x0303
    NUMBER_OF_MESSAGES = 0x0304
    CALLBACK_NUM = 0x0381
    DPF_RESULT = 0x0420
    SET_DPF = 0x0421
    MS_AVAILABILITY_STATUS = 0x0422
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    DELIVERY_FAILURE_REASON = 0x0425
    MORE_MESSAGES_TO_SEND = 0x0426
    MESSAGE_STATE = 0x0427
    USSD_SERVICE_OP = 0x0501
    DISPLAY_TIME = 0x1201
    SMS_SIGNAL = 0x1203
    MS_VALIDITY = 0x1204
    ALERT_ON_MESSAGE_DELIVERY = 0x130C
    ITS_REPLY_TYPE = 0x1380
    ITS_SESSION_INFO = 0x1383


class Limits:
    """Maximum C-Octet String sizes including the NUL terminator (spec 4.x field tables)."""

    SYSTEM_ID: Final = 16
    PASSWORD: Final = 9
    SYSTEM_TYPE: Final = 13
    ADDRESS_RANGE: Final = 41
    SERVICE_TYPE: Final = 6
    ADDR_21: Final = 21  # source_addr / destination_addr in submit_sm, deliver_sm, query_sm, cancel_sm, replace_sm
    ADDR_65: Final = 65  # addresses in data_sm and alert_notification
    TIME: Final = 17  # schedule_delivery_time, validity_period, final_date: 16 chars or empty
    MESSAGE_ID: Final = 65
    DL_NAME: Final = 21
    SHORT_MESSAGE: Final = 254
    MAX_DESTS: Final = 254
