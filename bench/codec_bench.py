"""SMPP codec micro-benchmark (no sockets): encode and decode of the hot-path PDUs.

    python bench/codec_bench.py [--number N] [--repeat R] [--json]

Reports, in µs per PDU, the best (timeit's recommended figure: least disturbed by other processes) and the median
of R runs of N operations each, and PDUs/s from the best. Targets on the 2-core reference
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


def measure(func: Callable[[], object], number: int, repeat: int) -> tuple[float, float]:
    """(best, median) µs per call over ``repeat`` runs of ``number`` calls."""
    runs = timeit.repeat(func, number=number, repeat=repeat)
    return min(runs) / number * 1e6, statistics.median(runs) / number * 1e6


def run(number: int, repeat: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for name, pdu in SAMPLES.items():
        raw = encode(pdu)
        assert decode(raw) == pdu
        enc_best, enc_median = measure(lambda pdu=pdu: encode(pdu), number, repeat)
        dec_best, dec_median = measure(lambda raw=raw: decode(raw), number, repeat)
        results[name] = {
            "bytes": len(raw),
            "encode_us": enc_best,
            "encode_median_us": enc_median,
            "decode_us": dec_best,
            "decode_median_us": dec_median,
        }
    stream = b"".join(encode(pdu) for pdu in SAMPLES.values()) * 64
    framer = Framer()
    frames_per_feed = len(SAMPLES) * 64
    frame_best, frame_median = measure(lambda: framer.feed(stream), max(1, number // 100), repeat)
    results["framing (per frame, 256 per feed)"] = {
        "bytes": len(stream),
        "encode_us": 0.0,
        "encode_median_us": 0.0,
        "decode_us": frame_best / frames_per_feed,
        "decode_median_us": frame_median / frames_per_feed,
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
    header = f"{'PDU':36} {'bytes':>6} {'encode µs best/median':>22} {'decode µs best/median':>22}"
    print(f"{header} {'encode/s':>11} {'decode/s':>11}")
    for name, r in results.items():
        enc = f"{r['encode_us']:.2f} / {r['encode_median_us']:.2f}" if r["encode_us"] else "-"
        dec = f"{r['decode_us']:.2f} / {r['decode_median_us']:.2f}"
        enc_rate = f"{1e6 / r['encode_us']:,.0f}" if r["encode_us"] else "-"
        print(f"{name:36} {r['bytes']:>6} {enc:>22} {dec:>22} {enc_rate:>11} {1e6 / r['decode_us']:>11,.0f}")


if __name__ == "__main__":
    main()
