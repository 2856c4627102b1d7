"""Tests of the CASE/UCO JSON-LD export of an item's provenance (custody/case_export.py).

The structure is checked here node by node; conformance is checked by case-utils'
``case_validate`` against the CASE 1.5.0 ontology and shapes, the same command that accepts the
published CASE example in tests/vectors/case/ (see tests/vectors/SOURCE.md).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from custody.case_export import ExhibitMaterial, InvalidMaterial, base_iri, case_document
from custody.errors import Forbidden, NotFound
from custody.events import SYSTEM, Actor, Event
from custody.evidence import EvidenceRecord
from storage.deployment import Deployment, initialise, open_deployment
from tests.conftest import TEST_ORIGIN, add_provider, make_config, require
from tests.factories import ACT_BODIES, SEIZURE, in_case

VECTOR = Path(__file__).parent.parent / "vectors" / "case" / "chain-of-custody-example.jsonld"
ALL_DIGESTS = ("sha256", "sha512", "sha3_256", "sha1", "md5")
UCO_METHODS = {
    "sha256": "SHA256",
    "sha512": "SHA512",
    "sha3_256": "SHA3-256",
    "sha1": "SHA1",
    "md5": "MD5",
}
ACTS: list[tuple[str, dict[str, str]]] = [
    (act, ACT_BODIES[act])
    for act in (
        "evidence.transferred",
        "evidence.received",
        "evidence.checked_out",
        "evidence.checked_in",
        "evidence.sealed",
    )
]
UUID_END = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-5][0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def deployment(tmp_path: Path, sqlite_url: str) -> Iterator[Deployment]:
    """A deployment (this module's own) that computes every digest Custos supports."""
    config = make_config(tmp_path, sqlite_url, digests=ALL_DIGESTS)
    initialise(config).deployment.close()
    opened = open_deployment(config)
    yield opened
    opened.close()


@pytest.fixture
def examiner(deployment: Deployment) -> Actor:
    operator = deployment.principals.get("operator")
    alice = deployment.principals.add("alice", "examiner", operator.actor)[0].actor
    in_case(deployment, "CASE-1", "alice")
    return alice


def material_of(deployment: Deployment, record: EvidenceRecord) -> ExhibitMaterial:
    entries = deployment.ledger.subject_entries(f"evidence:{record.id}")
    return ExhibitMaterial(
        record=deployment.handling.get(record.id, SYSTEM),
        events=[(e.index, e.leaf) for e in entries],
        origin=deployment.keys.origin,
    )


@pytest.fixture
def digital(deployment: Deployment, examiner: Actor) -> ExhibitMaterial:
    """A disk image, ingested under a warrant, then moved, checked out and in, and sealed."""
    metadata = {
        "kind": "digital",
        "case": "CASE-1",
        "exhibit": "HD-1",
        "description": "disk image of the suspect's laptop",
        "media_type": "application/octet-stream",
        "authority": "W-2026-17",
        "acquisition": {"tool": "FTK Imager 4.7", "acquired_by": "bob", "location": "Flat 3"},
    }
    session = deployment.intake.open_session(metadata, examiner)
    record = deployment.intake.receive(session.id, io.BytesIO(b"image " * 5000), examiner).record
    for act, data in ACTS:
        deployment.handling.record_act(record.id, act, data, examiner)
    return material_of(deployment, record)


@pytest.fixture
def physical(deployment: Deployment, examiner: Actor) -> ExhibitMaterial:
    metadata = {
        "kind": "physical",
        "case": "CASE-1",
        "exhibit": "P-1",
        "description": "a phone",
        "seizure": SEIZURE,
    }
    evidence_id = deployment.intake.register_physical(metadata, examiner).event.subject.id
    deployment.handling.record_act(evidence_id, *ACTS[0], examiner)
    return material_of(deployment, deployment.handling.get(evidence_id, SYSTEM))


# -- reading a JSON-LD graph ---------------------------------------------------------------------


def nodes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["@id"]: node for node in doc["@graph"]}


def refs(node: dict[str, Any], key: str) -> list[str]:
    value = node.get(key, [])
    return [v["@id"] for v in (value if isinstance(value, list) else [value])]


def of_type(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [n for n in doc["@graph"] if n["@type"] == kind]


def provenance_chain(doc: dict[str, Any]) -> list[str]:
    """The provenance records in custody order, following each action from the record it
    takes to the record it yields; fails unless they form one unbranched chain."""
    by_id = nodes(doc)
    records = {n["@id"] for n in of_type(doc, "case-investigation:ProvenanceRecord")}
    step: dict[str, str] = {}
    for action in of_type(doc, "case-investigation:InvestigativeAction"):
        [taken] = [r for r in refs(action, "uco-action:object") if r in records]
        [yielded] = refs(action, "uco-action:result")
        assert by_id[yielded]["@type"] == "case-investigation:ProvenanceRecord"
        assert taken not in step, f"{taken} is taken by two actions"
        step[taken] = yielded
    [first] = records - set(step.values())
    chain = [first]
    while chain[-1] in step:
        chain.append(step[chain[-1]])
    assert sorted(chain) == sorted(records), "records outside the chain"
    return chain


def case_validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    """Run case-utils' validator on the files' merged graph (about 3 s of loading the CASE
    1.5.0 ontology and shapes, whatever the size of the files)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    tool = shutil.which("case_validate", path=search)
    require(tool is not None, "case_validate is not installed (pip install case-utils)")
    assert tool is not None
    return subprocess.run(
        [tool, "--built-version", "case-1.5.0", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write(doc: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


# -- structure -----------------------------------------------------------------------------------


def test_each_event_is_an_action_taking_one_provenance_record_and_yielding_the_next(
    digital: ExhibitMaterial,
) -> None:
    doc = case_document(digital)
    by_id = nodes(doc)

    chain = provenance_chain(doc)
    actions = of_type(doc, "case-investigation:InvestigativeAction")

    assert len(actions) == len(digital.events) == 1 + len(ACTS)
    assert len(chain) == len(digital.events) + 1
    types = [Event.decode(leaf).type for _, leaf in digital.events]
    by_taken = {next(r for r in refs(a, "uco-action:object") if r in chain): a for a in actions}
    assert [by_taken[r]["uco-core:name"] for r in chain[:-1]] == types
    [artifact] = of_type(doc, "uco-observable:File")
    for record in chain:
        assert refs(by_id[record], "uco-core:object") == [artifact["@id"]]
        assert by_id[record]["case-investigation:exhibitNumber"] == "HD-1"


def test_the_file_carries_a_hash_for_every_digest_under_its_uco_method_name(
    digital: ExhibitMaterial,
) -> None:
    doc = case_document(digital)
    by_id = nodes(doc)

    [artifact] = of_type(doc, "uco-observable:File")
    [facet] = [by_id[f] for f in refs(artifact, "uco-core:hasFacet")]
    hashes = [by_id[h] for h in refs(facet, "uco-observable:hash")]

    assert facet["@type"] == "uco-observable:ContentDataFacet"
    assert facet["uco-observable:sizeInBytes"] == {
        "@type": "xsd:integer",
        "@value": str(digital.record.size),
    }
    assert set(digital.record.digests) == set(ALL_DIGESTS)
    assert {h["uco-types:hashMethod"]: h["uco-types:hashValue"] for h in hashes} == {
        UCO_METHODS[name]: {"@type": "xsd:hexBinary", "@value": value}
        for name, value in digital.record.digests.items()
    }
    assert all(h["@type"] == "uco-types:Hash" for h in hashes)


def test_actions_carry_the_event_time_performer_role_place_and_authority(
    digital: ExhibitMaterial, examiner: Actor
) -> None:
    doc = case_document(digital)
    by_id = nodes(doc)
    actions = {
        a["uco-core:name"]: a for a in of_type(doc, "case-investigation:InvestigativeAction")
    }
    events = {e.type: e for e in (Event.decode(leaf) for _, leaf in digital.events)}

    for name, action in actions.items():
        assert action["uco-action:startTime"] == {
            "@type": "xsd:dateTime",
            "@value": events[name].time,
        }
        [performer] = refs(action, "uco-action:performer")
        assert by_id[performer]["@type"] == "uco-identity:Identity"
        assert by_id[performer]["uco-core:name"] == examiner.id
    [has_role] = of_type(doc, "uco-core:Relationship")
    assert has_role["uco-core:kindOfRelationship"] == "Has_Role"
    assert refs(has_role, "uco-core:source") == refs(
        actions["evidence.ingested"], "uco-action:performer"
    )
    assert by_id[refs(has_role, "uco-core:target")[0]]["uco-core:name"] == "examiner"

    [place] = refs(actions["evidence.transferred"], "uco-action:location")
    assert by_id[place]["uco-core:name"] == "B2"
    [warrant] = refs(actions["evidence.ingested"], "uco-action:instrument")
    assert by_id[warrant]["case-investigation:authorizationIdentifier"] == "W-2026-17"
    [reference] = refs(actions["evidence.sealed"], "uco-core:externalReference")
    index = next(i for i, leaf in digital.events if Event.decode(leaf).type == "evidence.sealed")
    assert by_id[reference]["uco-core:externalIdentifier"] == str(index)
    assert "seal: S-0042" in actions["evidence.sealed"]["uco-core:description"]


def test_node_iris_are_stable_uuids_under_a_base_iri_from_the_log_origin(
    digital: ExhibitMaterial,
) -> None:
    doc = case_document(digital)
    again = case_document(ExhibitMaterial(digital.record, list(digital.events), digital.origin))
    elsewhere = case_document(ExhibitMaterial(digital.record, digital.events, "other.example/log"))

    assert doc == again
    assert doc["@context"]["kb"] == base_iri(TEST_ORIGIN) == f"https://{TEST_ORIGIN}/"
    assert all(i.startswith("kb:") and UUID_END.search(i) for i in nodes(doc))
    hashes = {n["@id"] for n in of_type(doc, "uco-types:Hash")}
    # Hashes are named by their value alone; everything else by the log it was recorded in.
    assert set(nodes(doc)) & set(nodes(elsewhere)) == hashes
    # An item's earlier history keeps its IRIs as later events are added.
    shorter = case_document(ExhibitMaterial(digital.record, digital.events[:2], digital.origin))
    assert set(nodes(shorter)) <= set(nodes(doc))


def test_hash_and_facet_iris_follow_the_case_utils_inherent_uuid_scheme(
    digital: ExhibitMaterial,
) -> None:
    try:
        import rdflib
        from case_utils import inherent_uuid, namespace
    except ImportError:
        require(False, "case-utils is not installed (pip install case-utils)")
    doc = case_document(digital)
    kb = rdflib.Namespace(doc["@context"]["kb"])

    def expand(iri: str) -> Any:
        return kb[iri.removeprefix("kb:")]

    [artifact] = of_type(doc, "uco-observable:File")
    [facet] = refs(artifact, "uco-core:hasFacet")
    expected = inherent_uuid.get_facet_uriref(
        expand(artifact["@id"]), namespace.NS_UCO_OBSERVABLE.ContentDataFacet, namespace=kb
    )
    assert expand(facet) == expected
    for node in of_type(doc, "uco-types:Hash"):
        value = rdflib.Literal(node["uco-types:hashValue"]["@value"], datatype=rdflib.XSD.hexBinary)
        seed = inherent_uuid.hash_method_value_uuid(
            rdflib.Literal(node["uco-types:hashMethod"]), value
        )
        assert node["@id"] == f"kb:Hash-{seed}"


def test_a_physical_item_is_an_observable_object_without_hashes(physical: ExhibitMaterial) -> None:
    doc = case_document(physical)

    [item] = of_type(doc, "uco-observable:ObservableObject")
    assert "uco-core:hasFacet" not in item and not of_type(doc, "uco-types:Hash")
    assert len(provenance_chain(doc)) == len(physical.events) + 1 == 3


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda e: e[:1] + e[2:], id="a-middle-event-dropped"),
        pytest.param(lambda e: [e[0], e[2], e[1], *e[3:]], id="two-events-swapped"),
        pytest.param(lambda e: e[1:], id="not-from-the-first-event"),
        pytest.param(lambda e: [e[0], (e[1][0], b"{}"), *e[2:]], id="a-leaf-not-an-event"),
    ],
)
def test_events_that_are_not_the_items_history_in_order_are_refused(
    digital: ExhibitMaterial, mangle: Any
) -> None:
    events = mangle(list(digital.events))

    with pytest.raises(InvalidMaterial):
        case_document(ExhibitMaterial(digital.record, events, digital.origin))


def test_another_items_event_is_refused(
    digital: ExhibitMaterial, physical: ExhibitMaterial
) -> None:
    events = [*digital.events, physical.events[-1]]

    with pytest.raises(InvalidMaterial, match="not evidence:"):
        case_document(ExhibitMaterial(digital.record, events, digital.origin))


# -- conformance (case-utils' case_validate, CASE 1.5.0) ------------------------------------------


@pytest.mark.parametrize("role", ["authority", "approver", "admin", "provider"])
def test_a_role_that_may_not_export_exhibits_gets_no_case_document(
    deployment: Deployment, physical: ExhibitMaterial, role: str
) -> None:
    operator = deployment.principals.get("operator").actor
    provider = add_provider(deployment).id if role == "provider" else None
    member = deployment.principals.add("member", role, operator, provider)[0].actor

    with pytest.raises(Forbidden, match=f"the {role} role may not export exhibits"):
        deployment.case_exports.document(physical.record.id, member)


@pytest.mark.parametrize("role", ["examiner", "court"])
def test_the_examiner_and_the_court_get_the_case_document(
    deployment: Deployment, physical: ExhibitMaterial, role: str
) -> None:
    operator = deployment.principals.get("operator").actor
    member = deployment.principals.add("member", role, operator)[0].actor
    in_case(deployment, "CASE-1", "member")

    assert deployment.case_exports.document(physical.record.id, member) == case_document(physical)


def test_an_item_outside_the_caller_s_cases_has_no_case_document(
    deployment: Deployment, physical: ExhibitMaterial
) -> None:
    operator = deployment.principals.get("operator").actor
    outsider = deployment.principals.add("outsider", "examiner", operator)[0].actor

    with pytest.raises(NotFound):
        deployment.case_exports.document(physical.record.id, outsider)


def test_the_published_chain_of_custody_example_validates_and_has_our_shape() -> None:
    result = case_validate(VECTOR)

    assert result.returncode == 0 and "Conforms: True" in result.stdout, result.stdout
    assert len(provenance_chain(json.loads(VECTOR.read_text(encoding="utf-8")))) == 2


def test_exported_digital_and_physical_items_conform_to_case_1_5(
    digital: ExhibitMaterial, physical: ExhibitMaterial, tmp_path: Path
) -> None:
    # One validator run for both documents: each run spends seconds loading the ontology.
    files = [
        write(case_document(digital), tmp_path / "digital.jsonld"),
        write(case_document(physical), tmp_path / "physical.jsonld"),
    ]

    result = case_validate(*files)

    assert result.returncode == 0 and "Conforms: True" in result.stdout, result.stdout
