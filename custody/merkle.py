"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and proof verification.

Standard library only: this module is part of the offline verifier.

Terminology follows RFC 9162 section 2.1:

* ``MTH(D[n])`` is the Merkle Tree Hash of the n leaves ``D[0:n]`` (section 2.1.1).
* ``PATH(m, D[n])`` is the inclusion proof for leaf m (section 2.1.3.1).
* ``PROOF(m, D[n])`` is the consistency proof between sizes m and n (section 2.1.4.1).

A :data:`NodeId` ``(level, index)`` names the complete subtree of ``2**level`` leaves covering
``[index << level, (index + 1) << level)``; level 0 nodes are the leaf hashes.  Every hash in an
inclusion or consistency proof is the hash of a leaf range ``[start, end)`` whose start is aligned
to a power of two at least ``end - start``; such a range is covered by the maximal aligned complete
subtrees returned by :func:`subtree_nodes`, and its RFC hash is :func:`fold_subtree` of their
hashes.  A store that keeps every complete node can therefore serve any proof.

Policy (same as Go's transparency-dev/merkle): consistency proofs from size 0 are rejected (even
0 -> 0), and every leaf hash, root and proof hash must be exactly :data:`HASH_SIZE` bytes.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from hashlib import sha256

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "InvalidProof",
    "NodeId",
    "append_leaves",
    "consistency_proof_ranges",
    "fold_subtree",
    "frontier_root",
    "hashes_for_ranges",
    "inclusion_proof_ranges",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "subtree_nodes",
    "verify_consistency",
    "verify_inclusion",
]

LEAF_PREFIX = b"\x00"
"""Domain separation prefix of a leaf hash (RFC 9162 section 2.1.1)."""
NODE_PREFIX = b"\x01"
"""Domain separation prefix of an interior node hash (RFC 9162 section 2.1.1)."""
HASH_SIZE = 32
"""Length in bytes of every hash (SHA-256)."""
EMPTY_ROOT = sha256(b"").digest()
"""MTH({}) = SHA-256() for the empty tree (RFC 9162 section 2.1.1)."""

NodeId = tuple[int, int]
"""``(level, index)``: the complete subtree of leaves [index << level, (index + 1) << level)."""


class InvalidProof(ValueError):
    """A proof, or an input to proof verification, is invalid; the message says which and why."""


# --------------------------------------------------------------------------------------------
# Hashing (RFC 9162 section 2.1.1)


def leaf_hash(data: bytes) -> bytes:
    """Return the leaf hash ``HASH(0x00 || data)`` (RFC 9162 section 2.1.1)."""
    return sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the interior node hash ``HASH(0x01 || left || right)`` (RFC 9162 section 2.1.1)."""
    return sha256(NODE_PREFIX + left + right).digest()


def _require_hash_list(hashes: Sequence[bytes], what: str) -> None:
    """Raise ValueError unless every element of ``hashes`` is a HASH_SIZE-byte bytes object."""
    for i, h in enumerate(hashes):
        if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
            raise ValueError(f"{what}[{i}] must be {HASH_SIZE} bytes, got {_describe(h)}")


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return MTH over already-hashed leaves (RFC 9162 section 2.1.1); ``[]`` gives EMPTY_ROOT.

    Computed level by level: an unpaired last node is promoted unchanged, which yields exactly
    the tree of the RFC's "largest power of two smaller than n" split.
    """
    _require_hash_list(hashes, "hashes")
    level = [bytes(h) for h in hashes]
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


# --------------------------------------------------------------------------------------------
# Node addressing


def _require_int(name: str, value: object) -> int:
    """Return ``value`` if it is a non-negative int (bool excluded), else raise ValueError."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def subtree_nodes(start: int, end: int) -> list[NodeId]:
    """Return the maximal aligned complete subtrees covering leaves [start, end), left to right.

    E.g. [0, 6) -> [(2, 0), (1, 2)] and [4, 7) -> [(1, 2), (0, 6)].  Raises ValueError unless
    0 <= start <= end.
    """
    _require_int("start", start)
    _require_int("end", end)
    if start > end:
        raise ValueError(f"empty or reversed range: start {start} > end {end}")
    nodes: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1  # largest subtree that fits
        if start:
            level = min(level, (start & -start).bit_length() - 1)  # ... and is aligned
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def fold_subtree(hashes: Sequence[bytes]) -> bytes:
    """Fold the hashes of ``subtree_nodes(start, end)`` into the RFC 9162 hash of that range.

    Folds from the right: ``node_hash(h0, node_hash(h1, ...))``.  This equals MTH(D[start:end])
    for every range that appears in a proof (start aligned to a power of two >= end - start),
    in particular for [0, n).  ``[]`` gives EMPTY_ROOT.
    """
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return bytes(acc)


def _largest_power_of_two_below(n: int) -> int:
    """Return the largest power of two k with k < n (RFC 9162 section 2.1.1); needs n > 1."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof_ranges(index: int, tree_size: int) -> list[tuple[int, int]]:
    """Return the leaf range of each hash of PATH(index, D[tree_size]), leaf level first.

    RFC 9162 section 2.1.3.1.  Raises ValueError unless 0 <= index < tree_size.
    """
    _require_int("index", index)
    _require_int("tree_size", tree_size)
    if index >= tree_size:
        raise ValueError(f"leaf index {index} is not in a tree of size {tree_size}")
    top_down: list[tuple[int, int]] = []
    lo, hi = 0, tree_size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:  # PATH(m, D[0:k]) : MTH(D[k:n])
            top_down.append((lo + k, hi))
            hi = lo + k
        else:  # PATH(m - k, D[k:n]) : MTH(D[0:k])
            top_down.append((lo, lo + k))
            lo += k
    top_down.reverse()
    return top_down


def consistency_proof_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Return the leaf range of each hash of PROOF(size1, D[size2]), in proof order.

    RFC 9162 section 2.1.4.1 (SUBPROOF).  ``size1 == size2`` gives [].  Raises ValueError
    unless 0 < size1 <= size2.
    """
    _require_int("size1", size1)
    _require_int("size2", size2)
    if not 0 < size1 <= size2:
        raise ValueError(
            f"no consistency proof from size {size1} to size {size2} (need 0 < size1 <= size2)"
        )
    appended: list[tuple[int, int]] = []
    lo, hi, whole = 0, size2, True  # whole: the "b" flag of SUBPROOF
    while size1 != hi:
        k = _largest_power_of_two_below(hi - lo)
        if size1 <= lo + k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            appended.append((lo + k, hi))
            hi = lo + k
        else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            appended.append((lo, lo + k))
            lo += k
            whole = False
    ranges = [] if whole else [(lo, hi)]  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
    ranges.extend(reversed(appended))
    return ranges


def hashes_for_ranges(
    ranges: Sequence[tuple[int, int]],
    lookup: Callable[[Sequence[NodeId]], Mapping[NodeId, bytes]],
) -> list[bytes]:
    """Return the RFC 9162 hash of each leaf range, fetching stored nodes in one batch.

    ``lookup`` is called exactly once with the de-duplicated NodeIds of all ranges (first-use
    order) and must return a mapping that contains each of them; a missing node raises KeyError.
    """
    per_range = [subtree_nodes(start, end) for start, end in ranges]
    wanted = list(dict.fromkeys(node for nodes in per_range for node in nodes))
    found = lookup(wanted)
    result: list[bytes] = []
    for nodes in per_range:
        hashes: list[bytes] = []
        for node in nodes:
            try:
                hashes.append(found[node])
            except KeyError:
                raise KeyError(f"lookup did not return Merkle node {node} (level, index)") from None
        result.append(fold_subtree(hashes))
    return result


# --------------------------------------------------------------------------------------------
# Verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2)


def _describe(value: object) -> str:
    """Describe a bad hash input for an error message."""
    if isinstance(value, bytes | bytearray):
        return f"{len(value)} bytes"
    return f"a {type(value).__name__}"


def _check_hash(name: str, value: object) -> bytes:
    """Return ``value`` as bytes if it is a HASH_SIZE-byte hash, else raise InvalidProof."""
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise InvalidProof(
            f"{name} must be a {HASH_SIZE}-byte SHA-256 hash, got {_describe(value)}"
        )
    return bytes(value)


def _check_proof(proof: object, want: int, what: str) -> list[bytes]:
    """Return the proof as a list of ``want`` hashes, else raise InvalidProof.

    The length is checked before the elements, so the work is bounded by ``want`` (O(log n)).
    """
    if isinstance(proof, str | bytes | bytearray | memoryview) or not isinstance(proof, Sequence):
        raise InvalidProof(
            f"proof must be a sequence of {HASH_SIZE}-byte hashes, got {_describe(proof)}"
        )
    if len(proof) != want:
        raise InvalidProof(f"{what} must have {want} hashes, got {len(proof)}")
    return [_check_hash(f"proof[{i}]", h) for i, h in enumerate(proof)]


def _check_size(name: str, value: object) -> int:
    """Return ``value`` if it is a non-negative int (bool excluded), else raise InvalidProof."""
    try:
        return _require_int(name, value)
    except ValueError as exc:
        raise InvalidProof(str(exc)) from None


def _short(h: bytes) -> str:
    """Abbreviate a hash for an error message."""
    return h.hex()[:16] + "..."


def _inclusion_proof_size(index: int, tree_size: int) -> int:
    """Return len(PATH(index, D[tree_size])) without building it (needs index < tree_size)."""
    inner = (index ^ (tree_size - 1)).bit_length()  # levels below the split from the right edge
    border = (index >> inner).bit_count()  # left siblings on the right border above that
    return inner + border


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes:
    """Return the root that ``proof`` gives for ``leaf_hash`` at ``index`` (RFC 9162 2.1.3.2).

    Raises InvalidProof if the inputs are malformed or the proof has the wrong length.
    """
    r = _check_hash("leaf_hash", leaf_hash)
    fn = _check_size("index", index)
    sn = _check_size("tree_size", tree_size)
    if fn >= sn:
        raise InvalidProof(f"leaf index {fn} is out of range for a tree of size {sn}")
    path = _check_proof(
        proof,
        _inclusion_proof_size(fn, sn),
        f"inclusion proof for leaf {fn} in a tree of size {sn}",
    )
    sn -= 1
    for p in path:
        if sn == 0:  # unreachable after the length check; kept as in the RFC
            raise InvalidProof("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:  # fn == sn > 0: skip the levels where this node has no sibling
                shift = (fn & -fn).bit_length() - 1
                fn >>= shift
                sn >>= shift
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # unreachable after the length check; kept as in the RFC
        raise InvalidProof("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree ``root`` of ``tree_size`` leaves.

    RFC 9162 section 2.1.3.2.  Returns None on success, raises InvalidProof otherwise.
    """
    computed = root_from_inclusion_proof(leaf_hash, index, tree_size, proof)
    expected = _check_hash("root", root)
    if not hmac.compare_digest(computed, expected):
        raise InvalidProof(
            f"inclusion proof for leaf {index} in a tree of size {tree_size} gives root "
            f"{_short(computed)}, not the expected root {_short(expected)}: wrong leaf, index, "
            "tree size, proof or root"
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree ``root1`` of ``size1`` leaves is a prefix of ``root2`` of ``size2``.

    RFC 9162 section 2.1.4.2.  Returns None on success, raises InvalidProof otherwise.
    Policy: size1 == 0 is rejected (an empty tree proves nothing, even 0 -> 0).
    """
    m = _check_size("size1", size1)
    n = _check_size("size2", size2)
    first = _check_hash("root1", root1)
    second = _check_hash("root2", root2)
    if m == 0:
        raise InvalidProof(
            "consistency proofs from size 0 are not accepted: an empty tree proves nothing"
        )
    if m > n:
        raise InvalidProof(f"size1 {m} is larger than size2 {n}: a log cannot shrink")
    if m == n:
        _check_proof(proof, 0, "consistency proof between equal sizes")
        if not hmac.compare_digest(first, second):
            raise InvalidProof(f"trees of equal size {m} have different roots: the log forked")
        return
    # Expected length: inclusion proof of leaf m-1 minus the levels of the complete subtree
    # of size 2**shift that both trees share, plus that subtree's own hash unless it is root1.
    shift = (m & -m).bit_length() - 1
    want = _inclusion_proof_size(m - 1, n) - shift + (0 if m == 1 << shift else 1)
    path = _check_proof(proof, want, f"consistency proof from size {m} to size {n}")
    if m == 1 << shift:  # step 2: an exact power of two: root1 is the first node
        path.insert(0, first)
    fn, sn = m - 1, n - 1  # step 3
    if fn & 1:  # step 4
        shift_ones = (~fn & (fn + 1)).bit_length() - 1  # trailing one bits of fn
        fn >>= shift_ones
        sn >>= shift_ones
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:  # unreachable after the length check; kept as in the RFC
            raise InvalidProof("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:  # fn == sn > 0: skip the levels where this node has no sibling
                shift_zeros = (fn & -fn).bit_length() - 1
                fn >>= shift_zeros
                sn >>= shift_zeros
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # unreachable after the length check; kept as in the RFC
        raise InvalidProof("consistency proof is shorter than the tree is deep")
    if not hmac.compare_digest(fr, first):
        raise InvalidProof(
            f"consistency proof from size {m} to size {n} gives old root {_short(fr)}, not root1 "
            f"{_short(first)}: wrong proof, sizes or root1"
        )
    if not hmac.compare_digest(sr, second):
        raise InvalidProof(
            f"consistency proof from size {m} to size {n} gives new root {_short(sr)}, not root2 "
            f"{_short(second)}: wrong proof, sizes or root2"
        )


# --------------------------------------------------------------------------------------------
# Incremental building


def append_leaves(
    frontier: Sequence[bytes], size: int, leaf_hashes: Sequence[bytes]
) -> tuple[list[tuple[NodeId, bytes]], list[bytes]]:
    """Append leaf hashes to a tree of ``size`` leaves described by its ``frontier``.

    ``frontier`` holds the hashes of ``subtree_nodes(0, size)``, left to right.  Returns every
    new complete node (each leaf at level 0, then each parent as it completes) and the frontier
    for ``size + len(leaf_hashes)``.  Amortised one SHA-256 per leaf.  Raises ValueError if the
    frontier does not match ``size`` or a hash is not HASH_SIZE bytes.
    """
    _require_int("size", size)
    if len(frontier) != size.bit_count():
        raise ValueError(
            f"a frontier for size {size} has {size.bit_count()} hashes, got {len(frontier)}"
        )
    _require_hash_list(frontier, "frontier")
    _require_hash_list(leaf_hashes, "leaf_hashes")
    stack = [bytes(h) for h in frontier]
    nodes: list[tuple[NodeId, bytes]] = []
    add_node = nodes.append
    push = stack.append
    pop = stack.pop
    prefix = NODE_PREFIX
    n = size
    for h in leaf_hashes:
        h = bytes(h)
        add_node(((0, n), h))
        index, level = n, 0
        while index & 1:  # this node is a right child: its left sibling tops the stack
            h = sha256(prefix + pop() + h).digest()
            index >>= 1
            level += 1
            add_node(((level, index), h))
        push(h)
        n += 1
    return nodes, stack


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """Return MTH of the tree whose frontier is given (RFC 9162 section 2.1.1); [] -> EMPTY_ROOT."""
    return fold_subtree(frontier)
