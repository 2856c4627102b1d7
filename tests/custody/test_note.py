"""Tests of custody.note: C2SP signed notes, checked against published known answers."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.note import (
    ALG_ED25519,
    MalformedNote,
    Note,
    NoteSignature,
    NoteSigner,
    NoteVerificationError,
    NoteVerifier,
    is_valid_key_name,
    key_hash,
    open_note,
    sign_note,
)

EM = "\u2014"
VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent.parent / "vectors" / "signed-note.json").read_text("utf-8")
)
SPEC = VECTORS["verify"][0]
GO = VECTORS["sign"][0]


def _signer(name: str, seed_byte: int) -> NoteSigner:
    """Return a signer with a fixed, test-only seed."""
    return NoteSigner(name, Ed25519PrivateKey.from_private_bytes(bytes([seed_byte]) * 32))


ALICE = _signer("alice.example/log", 1)
BOB = _signer("bob.example/witness", 2)
ALICE_IMPOSTOR = _signer("alice.example/log", 3)  # same name, another key
TEXT = "custody record 1\nsha256:00ff\n"


def _spec_verifier() -> NoteVerifier:
    return NoteVerifier.from_key(SPEC["verifier_key"])


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# --- known answers -------------------------------------------------------------------------


def test_vectors_file_names_its_source() -> None:
    assert "C2SP" in VECTORS["source"] and "golang.org/x/mod" in VECTORS["source"]


def test_spec_example_note_verifies_under_spec_verifier_key() -> None:
    note = open_note(SPEC["note"].encode("utf-8"), [_spec_verifier()])
    assert note.text == SPEC["text"]
    assert len(note.signatures) == 1
    assert note.signatures[0].name == SPEC["key_name"]
    assert note.signatures[0].key_hash.hex() == SPEC["key_hash_hex"]
    assert note.signatures[0].line() == SPEC["signature_line"]
    assert note.to_bytes() == SPEC["note"].encode("utf-8")


def test_spec_verifier_key_parses_and_reencodes_identically() -> None:
    v = _spec_verifier()
    assert v.name == "example.com/foo"
    assert v.key_hash == bytes.fromhex("530d903a")
    assert len(v.public_key) == 32
    assert key_hash(v.name, v.public_key) == v.key_hash
    assert v.verifier_key() == SPEC["verifier_key"]


def test_signing_go_example_reproduces_published_signature_line_byte_for_byte() -> None:
    signer = NoteSigner.from_signer_key(GO["signer_key"])
    assert signer.sign(GO["text"]).line() == GO["signature_line"]
    assert sign_note(GO["text"], [signer]) == GO["note"].encode("utf-8")


def test_go_example_signer_key_round_trips_and_derives_published_verifier_key() -> None:
    signer = NoteSigner.from_signer_key(GO["signer_key"])
    assert signer.name == GO["key_name"]
    assert signer.key_hash.hex() == GO["key_hash_hex"]
    assert signer.signer_key() == GO["signer_key"]
    assert signer.verifier.verifier_key() == GO["verifier_key"]


def test_go_example_note_opens_under_published_verifier_key() -> None:
    v = NoteVerifier.from_key(GO["verifier_key"])
    assert open_note(GO["note"].encode("utf-8"), [v]).text == GO["text"]


# --- formats -------------------------------------------------------------------------------


def test_signature_line_is_em_dash_name_and_base64_of_key_hash_and_signature() -> None:
    hash4, sig64 = bytes([1, 2, 3, 4]), bytes([0xFF]) * 64
    sig = NoteSignature(name="n", key_hash=hash4, signature=sig64)
    assert sig.line() == EM + " n " + _b64(hash4 + sig64) + "\n"


def test_note_bytes_are_text_blank_line_then_signature_lines() -> None:
    a, b = ALICE.sign(TEXT), BOB.sign(TEXT)
    assert Note(TEXT, (a, b)).to_bytes() == (TEXT + "\n" + a.line() + b.line()).encode("utf-8")


def test_generated_key_round_trips_through_signer_and_verifier_keys() -> None:
    skey = ALICE.signer_key()
    assert skey.startswith("PRIVATE+KEY+alice.example/log+")
    again = NoteSigner.from_signer_key(skey)
    assert again.key_hash == ALICE.key_hash
    assert NoteVerifier.from_key(ALICE.verifier.verifier_key()) == ALICE.verifier
    assert again.sign(TEXT) == ALICE.sign(TEXT)


def test_key_hash_prefixes_name_newline_and_ed25519_type_byte() -> None:
    import hashlib

    pub = ALICE.verifier.public_key
    expected = hashlib.sha256(b"alice.example/log\n\x01" + pub).digest()[:4]
    assert ALG_ED25519 == 0x01
    assert key_hash("alice.example/log", pub) == expected == ALICE.key_hash


def test_signer_repr_does_not_reveal_private_key() -> None:
    secret = ALICE.signer_key().rsplit("+", 1)[1]
    assert secret not in repr(ALICE)
    assert "private" not in repr(ALICE).lower()


def test_multiply_signed_note_opens_with_only_the_trusted_signatures() -> None:
    data = sign_note(TEXT, [ALICE, BOB])
    note = open_note(data, [BOB.verifier])
    assert note.text == TEXT
    assert [s.name for s in note.signatures] == [BOB.name]


def test_note_text_may_contain_empty_lines_and_splits_at_last_blank_line() -> None:
    text = "first\n\n\nlast\n\n"
    note = open_note(sign_note(text, [ALICE]), [ALICE.verifier])
    assert note.text == text


def test_note_accepts_non_ascii_text_and_names() -> None:
    signer = _signer("café.example/日誌", 9)
    text = "ed è subito sera.\n\u00e9\u2603 \x7f\n"
    note = open_note(sign_note(text, [signer]), [signer.verifier])
    assert note.text == text and note.signatures[0].name == "café.example/日誌"


def test_note_accepts_a_hundred_signatures() -> None:
    lines = "".join(_signer(f"k{i}.example", 10).sign(TEXT).line() for i in range(99))
    data = (TEXT + "\n" + lines + ALICE.sign(TEXT).line()).encode("utf-8")
    assert len(Note.from_bytes(data).signatures) == 100
    assert open_note(data, [ALICE.verifier]).signatures == (ALICE.sign(TEXT),)


def test_signature_of_unknown_algorithm_and_length_is_parsed_and_ignored() -> None:
    odd = NoteSignature(name="witness.example", key_hash=b"\xaa\xbb\xcc\xdd", signature=bytes(72))
    data = (TEXT + "\n" + odd.line() + ALICE.sign(TEXT).line()).encode("utf-8")
    assert Note.from_bytes(data).signatures[0] == odd
    assert open_note(data, [ALICE.verifier]).signatures == (ALICE.sign(TEXT),)


_TEXT_CHARS = st.characters(codec="utf-8", exclude_characters="".join(map(chr, range(0x20))))


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(st.text(_TEXT_CHARS, max_size=20), min_size=1, max_size=5),
    who=st.lists(st.sampled_from([ALICE, BOB]), min_size=1, max_size=3),
)
def test_any_signed_text_opens_and_reencodes_byte_for_byte(
    lines: list[str], who: list[NoteSigner]
) -> None:
    text = "\n".join(lines) + "\n"
    data = sign_note(text, who)
    assert Note.from_bytes(data).to_bytes() == data
    note = open_note(data, [ALICE.verifier, BOB.verifier])
    assert note.text == text
    assert {s.name for s in note.signatures} == {s.name for s in who}


# --- trust rejections ----------------------------------------------------------------------


def test_note_signed_by_another_key_is_rejected_naming_the_keys_seen() -> None:
    with pytest.raises(NoteVerificationError, match="not signed by any trusted key: alice"):
        open_note(sign_note(TEXT, [ALICE]), [BOB.verifier])


def test_note_with_no_verifiers_is_rejected() -> None:
    with pytest.raises(NoteVerificationError, match="not signed by any trusted key"):
        open_note(SPEC["note"].encode("utf-8"), [])


def test_spec_note_with_one_text_byte_changed_is_rejected() -> None:
    data = SPEC["note"].replace("example message", "example messagE").encode("utf-8")
    with pytest.raises(NoteVerificationError, match=r"invalid signature for key example\.com/foo"):
        open_note(data, [_spec_verifier()])


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_single_byte_change_in_text_is_rejected(data: st.DataObject) -> None:
    raw = bytearray(sign_note(TEXT, [ALICE]))
    i = data.draw(st.sampled_from([i for i, c in enumerate(TEXT) if c != "\n"]), label="index")
    new = data.draw(st.integers(0x20, 0x7E).filter(lambda b: b != raw[i]), label="byte")
    raw[i] = new
    with pytest.raises(NoteVerificationError):
        open_note(bytes(raw), [ALICE.verifier])


@settings(max_examples=120, deadline=None)
@given(bit=st.integers(0, (4 + 64) * 8 - 1))
def test_any_single_bit_flip_in_signature_line_is_rejected(bit: int) -> None:
    sig = ALICE.sign(TEXT)
    raw = bytearray(sig.key_hash + sig.signature)
    raw[bit // 8] ^= 1 << (bit % 8)
    line = f"{EM} {sig.name} {_b64(bytes(raw))}\n"
    with pytest.raises(NoteVerificationError) as err:
        open_note((TEXT + "\n" + line).encode("utf-8"), [ALICE.verifier])
    # A flip in the key hash makes the signature unknown; one in the signature makes it bad.
    expected = "not signed by any trusted key" if bit < 32 else "invalid signature"
    assert expected in str(err.value)


def test_same_name_signature_under_another_key_hash_is_ignored() -> None:
    assert ALICE_IMPOSTOR.key_hash != ALICE.key_hash
    with pytest.raises(NoteVerificationError, match="not signed by any trusted key: alice"):
        open_note(sign_note(TEXT, [ALICE_IMPOSTOR]), [ALICE.verifier])


def test_same_name_impostor_signature_beside_a_good_one_is_dropped() -> None:
    note = open_note(sign_note(TEXT, [ALICE_IMPOSTOR, ALICE]), [ALICE.verifier])
    assert note.signatures == (ALICE.sign(TEXT),)


def test_trusted_key_signature_that_does_not_verify_rejects_the_whole_note() -> None:
    forged = ALICE.sign("some other text\n")  # right name and key hash, wrong message
    data = (TEXT + "\n" + BOB.sign(TEXT).line() + forged.line()).encode("utf-8")
    with pytest.raises(NoteVerificationError, match=r"invalid signature for key alice\.example"):
        open_note(data, [ALICE.verifier, BOB.verifier])


def test_repeated_trusted_signature_lines_are_all_verified_and_kept_once() -> None:
    good = ALICE.sign(TEXT).line()
    note = open_note((TEXT + "\n" + good + good).encode("utf-8"), [ALICE.verifier])
    assert note.signatures == (ALICE.sign(TEXT),)
    bad = ALICE.sign("other\n").line()
    with pytest.raises(NoteVerificationError, match="invalid signature"):
        open_note((TEXT + "\n" + good + bad).encode("utf-8"), [ALICE.verifier])


def test_two_different_trusted_keys_under_one_name_and_hash_are_refused() -> None:
    v = ALICE.verifier
    twin = object.__new__(NoteVerifier)  # bypass the hash check to model a colliding key
    for attr, value in (("name", v.name), ("key_hash", v.key_hash), ("public_key", b"\x00" * 32)):
        object.__setattr__(twin, attr, value)
    with pytest.raises(NoteVerificationError, match="ambiguous key"):
        open_note(sign_note(TEXT, [ALICE]), [v, twin])


def test_the_same_verifier_given_twice_is_fine() -> None:
    assert open_note(sign_note(TEXT, [ALICE]), [ALICE.verifier, ALICE.verifier]).text == TEXT


def test_verify_rejects_signatures_of_the_wrong_length() -> None:
    sig = ALICE.sign(TEXT).signature
    assert ALICE.verifier.verify(TEXT, sig)
    assert not ALICE.verifier.verify(TEXT, sig[:63])
    assert not ALICE.verifier.verify(TEXT, sig + b"\x00")
    assert not ALICE.verifier.verify(TEXT, b"")


# --- malformed notes -----------------------------------------------------------------------

GOOD_LINE = ALICE.sign(TEXT).line()
GOOD = TEXT + "\n" + GOOD_LINE
GOOD_B64 = GOOD_LINE.split(" ")[2].rstrip("\n")


def _bad_b64_variants() -> dict[str, str]:
    raw = base64.b64decode(GOOD_B64)
    unpadded = GOOD_B64.rstrip("=")
    # For a 68-byte value the last character before the "=" carries 2 unused bits.
    last = GOOD_B64[-2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    noncanonical = GOOD_B64[:-2] + alphabet[alphabet.index(last) | 1] + "="
    assert len(raw) == 68 and base64.b64decode(noncanonical) == raw and noncanonical != GOOD_B64
    return {
        "unpadded": unpadded,
        "url-safe alphabet": GOOD_B64.replace("+", "-").replace("/", "_") + "-_",
        "non-alphabet": "!" + GOOD_B64[1:],
        "non-canonical padding bits": noncanonical,
        "inner whitespace": GOOD_B64[:10] + " " + GOOD_B64[10:],
        "too short to hold a signature": _b64(b"\x01\x02\x03\x04"),
        "empty": "",
    }


MALFORMED_NOTES: dict[str, bytes] = {
    "empty input": b"",
    "missing blank line": (TEXT + GOOD_LINE).encode(),
    "no signatures": (TEXT + "\n").encode(),
    "only a blank line": b"\n\n",
    "text not ending in newline": ("text" + GOOD_LINE).encode(),
    "signature block not ending in newline": GOOD.rstrip("\n").encode(),
    "extra blank line after signatures": (GOOD + "\n").encode(),
    "carriage return in text": GOOD.replace("record 1\n", "record 1\r\n").encode(),
    "CRLF line endings": GOOD.replace("\n", "\r\n").encode(),
    "tab in text": GOOD.replace("record 1", "record\t1").encode(),
    "NUL in text": GOOD.replace("record 1", "record\x001").encode(),
    "non-UTF-8 byte": GOOD.encode().replace(b"record", b"rec\xffrd"),
    "overlong UTF-8": GOOD.encode().replace(b"record", b"rec\xc1\xafrd"),
    "UTF-8-encoded surrogate": GOOD.encode().replace(b"record", b"rec\xed\xa0\x80rd"),
    "hyphen instead of em dash": GOOD.replace(EM, "-").encode(),
    "en dash instead of em dash": GOOD.replace(EM, "\u2013").encode(),
    "no space after em dash": GOOD.replace(EM + " ", EM).encode(),
    "two spaces before signature": GOOD.replace(" " + GOOD_B64, "  " + GOOD_B64).encode(),
    "trailing space on signature line": GOOD.replace(GOOD_B64, GOOD_B64 + " ").encode(),
    "no signature after name": (TEXT + f"\n{EM} alice.example/log\n").encode(),
    "empty key name": (TEXT + f"\n{EM}  {GOOD_B64}\n").encode(),
    "plus in key name": (TEXT + f"\n{EM} a+b {GOOD_B64}\n").encode(),
    "no-break space in key name": (TEXT + f"\n{EM} a\u00a0b {GOOD_B64}\n").encode(),
    "signature lines over 100": (TEXT + "\n" + GOOD_LINE * 101).encode(),
    "non-signature line among signatures": (GOOD + "not a signature\n").encode(),
    **{
        f"bad base64: {k}": (TEXT + f"\n{EM} alice.example/log {v}\n").encode()
        for k, v in _bad_b64_variants().items()
    },
}


@pytest.mark.parametrize("data", MALFORMED_NOTES.values(), ids=MALFORMED_NOTES.keys())
def test_malformed_note_is_rejected_before_any_verification(data: bytes) -> None:
    with pytest.raises(MalformedNote):
        Note.from_bytes(data)
    with pytest.raises(MalformedNote):
        open_note(data, [ALICE.verifier])


def test_note_is_parsed_from_bytes_not_text() -> None:
    with pytest.raises(TypeError):
        Note.from_bytes(GOOD)  # type: ignore[arg-type]


def test_well_formed_base_note_of_the_malformed_cases_opens() -> None:
    assert open_note(GOOD.encode(), [ALICE.verifier]).text == TEXT


def test_sign_note_requires_text_ending_in_newline() -> None:
    with pytest.raises(ValueError, match="newline"):
        sign_note("no final newline", [ALICE])
    with pytest.raises(ValueError, match="newline"):
        sign_note("", [ALICE])


def test_sign_note_requires_a_signer_and_well_formed_text() -> None:
    with pytest.raises(ValueError, match="signer"):
        sign_note(TEXT, [])
    with pytest.raises(ValueError):
        sign_note("carriage\rreturn\n", [ALICE])


@pytest.mark.parametrize(
    "text,signatures",
    [
        ("no newline", (GOOD_LINE,)),
        (TEXT, ()),
        (TEXT, (GOOD_LINE,) * 101),
        ("tab\there\n", (GOOD_LINE,)),
    ],
    ids=["text without newline", "no signatures", "101 signatures", "control character"],
)
def test_note_value_refuses_what_would_not_parse(text: str, signatures: tuple[str, ...]) -> None:
    with pytest.raises(MalformedNote):
        Note(text, tuple(NoteSignature.from_line(s) for s in signatures))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "", "key_hash": b"1234", "signature": b"s"},
        {"name": "a b", "key_hash": b"1234", "signature": b"s"},
        {"name": "a", "key_hash": b"123", "signature": b"s"},
        {"name": "a", "key_hash": b"1234", "signature": b""},
    ],
    ids=["empty name", "space in name", "3-byte key hash", "empty signature"],
)
def test_note_signature_value_refuses_malformed_fields(kwargs: dict[str, Any]) -> None:
    with pytest.raises(MalformedNote):
        NoteSignature(**kwargs)


# --- key names and keys --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["example.com/foo", "PeterNeumann", "é", "a\u200bb", "a-b_c.d/e:f"]
)
def test_valid_key_names(name: str) -> None:
    assert is_valid_key_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a b",
        "a+b",
        "+",
        "a\tb",
        "a\nb",
        "a\u00a0b",
        "a\u0085b",
        "a\u2003b",
        "a\u2028b",
        "a\u3000b",
        "\ud800",
    ],
)
def test_invalid_key_names_have_spaces_pluses_or_are_empty(name: str) -> None:
    assert not is_valid_key_name(name)


def _vkey(name: str, payload: bytes, hash_hex: str | None = None) -> str:
    if hash_hex is None:
        hash_hex = key_hash(name, payload[1:33].ljust(32, b"\x00")).hex()
    return f"{name}+{hash_hex}+{_b64(payload)}"


_PUB = ALICE.verifier.public_key
_N = ALICE.name
_HASH = ALICE.key_hash.hex()
_VKEY_B64 = _b64(bytes([ALG_ED25519]) + _PUB)

MALFORMED_VKEYS: dict[str, str] = {
    "empty": "",
    "name only": _N,
    "no key": f"{_N}+{ALICE.key_hash.hex()}",
    "hash of another key": _vkey(_N, b"\x01" + _PUB, BOB.key_hash.hex()),
    "hash of this key under another name": _vkey(_N, b"\x01" + _PUB, key_hash("x", _PUB).hex()),
    "wrong algorithm byte": _vkey(_N, b"\x02" + _PUB),
    "no algorithm byte": _vkey(_N, _PUB),
    "31-byte key": _vkey(_N, b"\x01" + _PUB[:31]),
    "33-byte key": _vkey(_N, b"\x01" + _PUB + b"\x00"),
    "only the algorithm byte": _vkey(_N, b"\x01"),
    "plus in name": _vkey("a+b", b"\x01" + _PUB),
    "space in name": _vkey("alice example", b"\x01" + _PUB),
    "empty name": _vkey("", b"\x01" + _PUB, ALICE.key_hash.hex()),
    "7-digit hash": f"{_N}+{_HASH[:7]}+{_VKEY_B64}",
    "9-digit hash": f"{_N}+{_HASH}0+{_VKEY_B64}",
    "non-hex hash": f"{_N}+{_HASH[:7]}g+{_VKEY_B64}",
    "signed hex": f"{_N}+-{_HASH[1:]}+{_VKEY_B64}",
    "0x-prefixed hash": f"{_N}+0x{_HASH[:6]}+{_VKEY_B64}",
    "key base64 cut short": _vkey(_N, b"\x01" + _PUB)[:-1],
    "key base64 with padding appended": _vkey(_N, b"\x01" + _PUB) + "==",
    "trailing newline": _vkey(_N, b"\x01" + _PUB) + "\n",
    "private signer key": ALICE.signer_key(),
}


@pytest.mark.parametrize("vkey", MALFORMED_VKEYS.values(), ids=MALFORMED_VKEYS.keys())
def test_malformed_verifier_key_is_rejected(vkey: str) -> None:
    with pytest.raises(MalformedNote):
        NoteVerifier.from_key(vkey)


def test_verifier_key_built_by_test_helper_is_accepted() -> None:
    assert NoteVerifier.from_key(_vkey(_N, b"\x01" + _PUB)) == ALICE.verifier


def test_verifier_key_hash_in_upper_case_hex_is_accepted_like_go() -> None:
    upper = f"{_N}+{_HASH.upper()}+{_VKEY_B64}"
    assert NoteVerifier.from_key(upper) == ALICE.verifier


def test_verifier_value_refuses_a_key_hash_that_does_not_match() -> None:
    with pytest.raises(MalformedNote, match="key hash"):
        NoteVerifier(name=_N, key_hash=BOB.key_hash, public_key=_PUB)


_SEED = ALICE.private_key.private_bytes_raw()


def _skey(name: str, hash_hex: str, payload: bytes) -> str:
    return f"PRIVATE+KEY+{name}+{hash_hex}+{_b64(payload)}"


MALFORMED_SKEYS: dict[str, str] = {
    "verifier key": ALICE.verifier.verifier_key(),
    "lower-case prefix": ALICE.signer_key().replace("PRIVATE+KEY", "private+key"),
    "hash of another key": _skey(_N, BOB.key_hash.hex(), b"\x01" + _SEED),
    "wrong algorithm byte": _skey(_N, _HASH, b"\x02" + _SEED),
    "31-byte seed": _skey(_N, _HASH, b"\x01" + _SEED[:31]),
    "64-byte private key": _skey(_N, _HASH, b"\x01" + _SEED + _PUB),
    "missing hash": f"PRIVATE+KEY+{_N}+{_b64(b'x' + _SEED)}",
    "space in name": _skey("a b", _HASH, b"\x01" + _SEED),
    "seed base64 cut short": _skey(_N, _HASH, b"\x01" + _SEED)[:-1],
}


def test_signer_key_built_by_test_helper_is_accepted() -> None:
    assert NoteSigner.from_signer_key(_skey(_N, _HASH, b"\x01" + _SEED)).key_hash == ALICE.key_hash


@pytest.mark.parametrize("skey", MALFORMED_SKEYS.values(), ids=MALFORMED_SKEYS.keys())
def test_malformed_signer_key_is_rejected(skey: str) -> None:
    with pytest.raises(MalformedNote):
        NoteSigner.from_signer_key(skey)


def test_signer_refuses_an_invalid_name() -> None:
    with pytest.raises(MalformedNote):
        NoteSigner("bad name", Ed25519PrivateKey.generate())
