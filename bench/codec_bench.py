"""SMPP codec micro-benchmark (no sockets): encode and decode of the hot-path PDUs.

    python bench/codec_bench.py [--number N] [--repeat R] [--json]

Reports the median of R runs of N operations each, in µs per PDU and PDUs/s. Targets on the 2-core reference
machine (issue 2): submit_sm encode ≤ 2 µs, decode ≤ 4 µs; responses ≤ 1 µs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import timeit
from collections.abc import Callable

from smppgw.smpp.codec import decode, encode
from smppgw.smpp.constants import DataCoding, EsmClass, MessageState, Tag
from smppgw.smpp.framing import Framer
from smppgw.smpp.pdu import DeliverSm, EnquireLink, Pdu, SubmitSm, SubmitSmResp, tlv_cstr, tlv_int

CYRILLIC_70 = "Ваш код 482913. Никому его не сообщайте. Займ одобрен, деньги поступят!"[:70]
RECEIPT_TEXT = b"id:1A2B3C4D sub:001 dlvrd:001 submit date:2611221200 done date:2611221201 stat:DELIVRD err:000 text:"

SAMPLES: dict[str, Pdu] = {
    "submit_sm (70 Cyrillic, UCS-2)": SubmitSm(
        sequence=123456,
        source_addr_ton=5,
        source_addr="MFO-Zaim",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="79161234567",
        registered_delivery=1,
        data_coding=DataCoding.UCS2,
        short_message=CYRILLIC_70.encode("utf-16-be"),
    ),
    "submit_sm_resp": SubmitSmResp(sequence=123456, message_id="1a2b3c4d"),
    "deliver_sm receipt (+TLVs)": DeliverSm(
        sequence=98765,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="79161234567",
        dest_addr_ton=5,
        destination_addr="MFO-Zaim",
        esm_class=EsmClass.TYPE_SMSC_DELIVERY_RECEIPT,
        short_message=RECEIPT_TEXT,
        tlvs=(
            tlv_cstr(Tag.RECEIPTED_MESSAGE_ID, "1A2B3C4D"),
            tlv_int(Tag.MESSAGE_STATE, MessageState.DELIVERED, 1),
        ),
    ),
    "enquire_link": EnquireLink(sequence=42),
}


def measure(func: Callable[[], object], number: int, repeat: int) -> float:
    """Median µs per call over ``repeat`` runs of ``number`` calls."""
    runs = timeit.repeat(func, number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e6


def run(number: int, repeat: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for name, pdu in SAMPLES.items():
        raw = encode(pdu)
        assert decode(raw) == pdu
        results[name] = {
            "bytes": len(raw),
            "encode_us": measure(lambda pdu=pdu: encode(pdu), number, repeat),
            "decode_us": measure(lambda raw=raw: decode(raw), number, repeat),
        }
    stream = b"".join(encode(pdu) for pdu in SAMPLES.values()) * 64
    framer = Framer()
    frames_per_feed = len(SAMPLES) * 64
    results["framing (per frame, 256 per feed)"] = {
        "bytes": len(stream),
        "encode_us": 0.0,
        "decode_us": measure(lambda: framer.feed(stream), max(1, number // 100), repeat) / frames_per_feed,
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--number", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    results = run(args.number, args.repeat)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'PDU':36} {'bytes':>6} {'encode µs':>10} {'decode µs':>10} {'encode/s':>11} {'decode/s':>11}")
    for name, r in results.items():
        enc = f"{r['encode_us']:.2f}" if r["encode_us"] else "-"
        enc_rate = f"{1e6 / r['encode_us']:,.0f}" if r["encode_us"] else "-"
        print(
            f"{name:36} {r['bytes']:>6} {enc:>10} {r['decode_us']:>10.2f} {enc_rate:>11} {1e6 / r['decode_us']:>11,.0f}"
        )


if __name__ == "__main__":
    main()
