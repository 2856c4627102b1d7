"""custody.commitment: the one salted commitment the writers record and the verifier checks."""

from __future__ import annotations

import hashlib

from custody.commitment import SALT_SIZE, commit, commitment, new_salt


def test_commitment_is_sha256_over_the_salt_then_the_document() -> None:
    salt = bytes(range(SALT_SIZE))
    assert commitment(salt, b"findings") == hashlib.sha256(salt + b"findings").hexdigest()


def test_each_commit_draws_a_fresh_salt_so_equal_texts_commit_differently() -> None:
    (salt1, digest1), (salt2, digest2) = commit(b"same text"), commit(b"same text")
    assert len(salt1) == len(salt2) == SALT_SIZE == len(new_salt())
    assert salt1 != salt2 and digest1 != digest2
    assert digest1 == commitment(salt1, b"same text")
