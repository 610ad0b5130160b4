"""Golden-byte tests for the SMPP codec (DESIGN.md §3: round-trips alone miss symmetric bugs).

The bytes live in ``tests/vectors/*.json``; every vector says where it comes from (``provenance``): test data or a
capture published by another SMPP implementation (Cloudhopper, gosmpp, smpp.pdu/Jasmin, python-smpplib issues), or
assembled by hand from a section of the SMPP 3.4 specification, with a field-by-field breakdown (``parts``). None was
produced by our encoder, and the expected values (``fields``) are written out, not derived from our decoder.

For each message vector:
- ``decode(hex)`` yields the named PDU type, header and every field as written in the vector;
- the PDU built from the vector's fields encodes to exactly ``hex`` (the encoder checked on its own), and so does
  ``encode(decode(hex))`` — unless the vector is marked ``canonical: false`` (a tolerated deviation we only decode;
  ``encode_raises`` then says our encoder must refuse to produce it).
Malformed vectors must raise ``PduDecodeError`` carrying the status to answer with, the command_id and the sequence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from smppgw.smpp.codec import decode, encode
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.errors import LocalProtocolError, PduDecodeError
from smppgw.smpp.pdu import ALL_PDU_TYPES, DistributionList, Pdu, SmeAddress, UnsuccessSme

Vector = dict[str, Any]

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors"
MESSAGE_FILES = ("session.json", "submit.json", "deliver.json", "ancillary.json")
MALFORMED_FILE = "malformed.json"
PROVENANCE_KINDS = frozenset({"public", "spec"})
HEADER_FIELDS = frozenset({"sequence", "status"})

# Vectors that expose a codec bug: "<test>:<vector name>" -> reason. Each becomes a strict xfail until fixed.
KNOWN_BUGS: dict[str, str] = {}

# The quirks the vector set must keep covering (named vectors, so a rename cannot silently drop one).
REQUIRED_QUIRKS = (
    "submit_sm.ucs2_70_cyrillic.spec",
    "submit_sm.udh_concat.spec",
    "submit_sm.sar_tlvs.spec",
    "submit_sm.message_payload_sm_length_0.spec",
    "deliver_sm.receipt.receipted_message_id_message_state.cloudhopper",
    "submit_sm.vendor_tlv_0x1401.spec",
    "deliver_sm.receipt.vendor_tlv_0x1401.spec",
    "bind_transceiver_resp.sc_interface_version.cloudhopper",
    "submit_sm_resp.error_empty_body.msgqful.smpp_pdu",
    "submit_sm_resp.error_with_message_id.spec",
    "generic_nack.invmsglen.cloudhopper",
    "submit_multi.sme_and_dl.spec",
    "submit_multi_resp.unsuccess.gosmpp",
    "query_sm_resp.final_date.spec",
)


def _load(name: str) -> list[Vector]:
    document = json.loads((VECTOR_DIR / name).read_text(encoding="utf-8"))
    vectors: list[Vector] = document["vectors"]
    return vectors


MESSAGE_VECTORS = [vector for name in MESSAGE_FILES for vector in _load(name)]
MALFORMED_VECTORS = _load(MALFORMED_FILE)
ALL_VECTORS = MESSAGE_VECTORS + MALFORMED_VECTORS
PDU_TYPES: dict[str, type[Pdu]] = {cls.__name__: cls for cls in ALL_PDU_TYPES}


def _params(test: str, vectors: list[Vector]) -> list[Any]:
    """One pytest param per vector, named after it; known bugs become strict xfails."""
    params = []
    for vector in vectors:
        reason = KNOWN_BUGS.get(f"{test}:{vector['name']}")
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(vector, id=vector["name"], marks=marks))
    return params


def _raw(vector: Vector) -> bytes:
    return bytes.fromhex(vector["hex"])


def _expected_value(field: str, value: Any) -> Any:
    """The Python value a decoded PDU must hold for a field as the vector file spells it."""
    if field == "short_message":
        return bytes.fromhex(value["hex"])
    if field == "tlvs":
        return tuple((int(item["tag"], 16), bytes.fromhex(item["hex"])) for item in value)
    if field == "dest_addresses":
        return tuple(
            SmeAddress(item["ton"], item["npi"], item["address"])
            if item["dest_flag"] == 1
            else DistributionList(item["dl_name"])
            for item in value
        )
    if field == "unsuccess_smes":
        return tuple(UnsuccessSme(item["ton"], item["npi"], item["address"], item["error_status"]) for item in value)
    return value


def _expected_fields(vector: Vector) -> dict[str, Any]:
    return {field: _expected_value(field, value) for field, value in vector["fields"].items()}


def _pdu_from_vector(vector: Vector) -> Pdu:
    """The PDU the vector describes, built from its written-out fields (not from decoding its bytes)."""
    header = vector["header"]
    return PDU_TYPES[vector["type"]](
        sequence=header["sequence_number"], status=header["command_status"], **_expected_fields(vector)
    )


# ---------------------------------------------------------------------------------------------------- the vector files


def test_vector_names_are_unique() -> None:
    names = [vector["name"] for vector in ALL_VECTORS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("vector", _params("provenance", ALL_VECTORS))
def test_every_vector_states_its_provenance(vector: Vector) -> None:
    provenance = vector["provenance"]
    assert provenance["kind"] in PROVENANCE_KINDS
    assert provenance["source"]
    if provenance["kind"] == "public":
        assert provenance["url"].startswith("https://")
        assert provenance["where"]
    else:
        assert "SMPP 3.4" in provenance["source"]
        assert vector["parts"], "a vector assembled from the spec carries its field-by-field breakdown"


@pytest.mark.parametrize("vector", _params("parts", [v for v in ALL_VECTORS if "parts" in v]))
def test_field_breakdown_concatenates_to_the_bytes(vector: Vector) -> None:
    assert "".join(part_hex for part_hex, _ in vector["parts"]) == vector["hex"]
    assert all(description for _, description in vector["parts"])


@pytest.mark.parametrize("vector", _params("length", MESSAGE_VECTORS))
def test_command_length_matches_the_frame(vector: Vector) -> None:
    raw = _raw(vector)
    assert vector["hex"] == vector["hex"].lower()
    assert int.from_bytes(raw[:4], "big") == len(raw)


def test_every_pdu_type_has_a_canonical_vector() -> None:
    covered = {vector["type"] for vector in MESSAGE_VECTORS if vector["canonical"]}
    assert covered == set(PDU_TYPES), sorted(set(PDU_TYPES) - covered)


def test_required_quirks_are_covered() -> None:
    names = {vector["name"] for vector in ALL_VECTORS}
    assert not [name for name in REQUIRED_QUIRKS if name not in names]


def test_both_kinds_of_provenance_are_present() -> None:
    kinds = {vector["provenance"]["kind"] for vector in ALL_VECTORS}
    assert kinds == PROVENANCE_KINDS


# ---------------------------------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("vector", _params("decode", MESSAGE_VECTORS))
def test_decode_gives_the_expected_fields(vector: Vector) -> None:
    pdu = decode(_raw(vector))
    header = vector["header"]
    assert type(pdu).__name__ == vector["type"]
    assert pdu.command_id == int(header["command_id"], 16)
    assert pdu.sequence == header["sequence_number"]
    assert pdu.status == header["command_status"]
    struct_fields = {field.name for field in msgspec.structs.fields(type(pdu))}
    assert set(vector["fields"]) == struct_fields - HEADER_FIELDS, "a vector must state every field of its PDU"
    for field, expected in _expected_fields(vector).items():
        assert getattr(pdu, field) == expected, field


# ---------------------------------------------------------------------------------------------------- encoding

CANONICAL = [vector for vector in MESSAGE_VECTORS if vector["canonical"]]
NON_CANONICAL = [vector for vector in MESSAGE_VECTORS if not vector["canonical"]]


@pytest.mark.parametrize("vector", _params("encode", CANONICAL))
def test_encoding_the_written_fields_gives_the_golden_bytes(vector: Vector) -> None:
    assert encode(_pdu_from_vector(vector)).hex() == vector["hex"]


@pytest.mark.parametrize("vector", _params("roundtrip", CANONICAL))
def test_reencoding_the_decoded_pdu_is_byte_exact(vector: Vector) -> None:
    raw = _raw(vector)
    assert encode(decode(raw)) == raw


@pytest.mark.parametrize("vector", _params("non_canonical", NON_CANONICAL))
def test_non_canonical_vectors_explain_themselves(vector: Vector) -> None:
    """Decode-only vectors (tested above) say why; the out-of-spec ones must be refused by our encoder."""
    assert vector["canonical_note"]
    if vector.get("encode_raises") == "LocalProtocolError":
        with pytest.raises(LocalProtocolError):
            encode(decode(_raw(vector)))


@pytest.mark.parametrize("vector", _params("normalise", [v for v in NON_CANONICAL if "encode_raises" not in v]))
def test_reencoding_a_non_canonical_vector_keeps_its_fields(vector: Vector) -> None:
    """Our encoder may normalise a tolerated deviation, but what it writes must decode to the same PDU."""
    decoded = decode(_raw(vector))
    assert decode(encode(decoded)) == decoded


# ---------------------------------------------------------------------------------------------------- malformed frames


@pytest.mark.parametrize("vector", _params("malformed", MALFORMED_VECTORS))
def test_malformed_frame_raises_with_the_header_kept(vector: Vector) -> None:
    expected = vector["expect_error"]
    assert expected["exception"] == "PduDecodeError"
    with pytest.raises(PduDecodeError) as caught:
        decode(_raw(vector))
    assert caught.value.status == CommandStatus[expected["status"]]
    assert caught.value.command_id == int(expected["command_id"], 16)
    assert caught.value.sequence == expected["sequence"]
