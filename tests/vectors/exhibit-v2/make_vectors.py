"""How tests/vectors/exhibit-v2 was made, once, with the code of the last commit that wrote
custos/exhibit/v2 (0a17fbb): from a copy of that commit's tree (``git archive 0a17fbb``), with
this file put at tests/vectors/exhibit-v2/ in it, run from that copy's root as

    python tests/vectors/exhibit-v2/make_vectors.py

with an interpreter that imports that copy's packages (not an editable install of a newer
tree), then the files it wrote copied here.

It exports the sound bundles of tests/custody/test_verify_bundle.py from a new deployment and
writes, beside this file, the sound bundles, the verifier key that checks them, the tamper
corpus of that test (but the oversized member, 64 MiB of one byte) and vectors.json, which
names the step each tampered bundle must fail at, with its item and event.

It refuses to run when vectors.json exists: these vectors are the record of what Custos wrote
in format custos/exhibit/v2, so that a writer and a verifier that drift together are caught.
Nothing rewrites them; a new format gets its own directory beside this one.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from tests.custody.test_verify_bundle import (  # noqa: E402
    TAMPER_CORPUS,
    Exhibits,
    Tampered,
    an_oversized_member,
    make_exhibits,
)

SOUND = ("item", "response", "physical")


def sound(x: Exhibits, name: str) -> bytes:
    return {"item": x.item_zip, "response": x.response_zip, "physical": x.physical_zip}[name]


def main() -> None:
    if (HERE / "vectors.json").exists():
        sys.exit(f"{HERE / 'vectors.json'} exists: these vectors are made once, never again")
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        x = make_exhibits(tmp / "deployment")
        try:
            vectors: dict[str, object] = {"key": "key.txt", "sound": {}, "tampered": {}}
            (HERE / "key.txt").write_text(x.key + "\n", encoding="ascii")
            for name in SOUND:
                (HERE / f"sound-{name}.zip").write_bytes(sound(x, name))
                vectors["sound"][name] = f"sound-{name}.zip"  # type: ignore[index]
            made = tmp / "made"
            made.mkdir()
            for tamper in TAMPER_CORPUS:
                if tamper is an_oversized_member:
                    continue
                case: Tampered = tamper(x, made)
                vectors["tampered"][tamper.__name__] = describe(case)  # type: ignore[index]
            (HERE / "vectors.json").write_text(
                json.dumps(vectors, indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )
        finally:
            x.deployment.close()


def describe(case: Tampered) -> dict[str, object]:
    """Copy the case's files here and say what each is for."""
    assert isinstance(case.bundle, Path)
    entry: dict[str, object] = {
        "bundle": copy(case.bundle),
        "step": case.step,
        "evidence_id": case.evidence_id,
        "event_index": case.event_index,
        "artifact": copy(case.artifact) if case.artifact else None,
        "known_checkpoint": None,
    }
    if case.known_checkpoint is not None:
        (HERE / "forked-known-checkpoint").write_bytes(case.known_checkpoint)
        entry["known_checkpoint"] = "forked-known-checkpoint"
    return entry


def copy(path: Path) -> str:
    shutil.copyfile(path, HERE / path.name)
    return path.name


if __name__ == "__main__":
    main()
