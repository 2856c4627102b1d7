"""An evidence item's provenance as CASE/UCO JSON-LD (caseontology.org, CASE 1.5 / UCO 1.5).

Each custody event becomes a ``case-investigation:InvestigativeAction`` that takes the item's
previous ``case-investigation:ProvenanceRecord`` (``uco-action:object``) and yields the next
(``uco-action:result``): N events give N actions chained through N + 1 records, the first being
the item as it was handed over, before Custos recorded it. The artifact is a
``uco-observable:File`` (a physical item a ``uco-observable:ObservableObject``) whose
``ContentDataFacet`` carries one ``uco-types:Hash`` per digest. Performers are
``uco-identity:Identity`` nodes linked to their ``uco-role:Role`` by a ``Has_Role``
relationship; each action refers back to its ledger entry through a ``uco-core:ExternalReference``.

Node IRIs are stable: ``kb:<Class>-<UUIDv5>``, the UUID derived from a Custos id (evidence id,
ledger index, principal id) under a namespace derived from the log origin, which also gives the
``kb:`` base IRI. Hash and facet IRIs follow case-utils' ``inherent_uuid`` scheme, so the same
digest gets the same IRI in any knowledge base. UCO's shapes advise that every node IRI end in a
UUID, and ``case_validate`` counts that advice as a failure unless told otherwise.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from custody.cases import Cases
from custody.errors import NotFound
from custody.events import Actor, Event, InvalidEvent, Subject
from custody.evidence import EXPORT_ROLES, EvidenceRecord, EvidenceStore, require_role
from custody.json_codec import canonical_json
from custody.ledger import Ledger
from custody.merkle import leaf_hash

__all__ = [
    "CONTEXT",
    "CaseExports",
    "ExhibitMaterial",
    "InvalidMaterial",
    "base_iri",
    "case_document",
]

_CASE = "https://ontology.caseontology.org/case/"
_UCO = "https://ontology.unifiedcyberontology.org/uco/"
CONTEXT: dict[str, str] = {
    "case-investigation": _CASE + "investigation/",
    "uco-action": _UCO + "action/",
    "uco-core": _UCO + "core/",
    "uco-identity": _UCO + "identity/",
    "uco-location": _UCO + "location/",
    "uco-observable": _UCO + "observable/",
    "uco-role": _UCO + "role/",
    "uco-types": _UCO + "types/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
"""The JSON-LD prefixes of every document, beside ``kb`` (which depends on the origin)."""

# Custos digest names -> UCO HashNameVocab names and the lowercase spelling case-utils uses in
# the "urn:hash::<method>:<hex>" seed of a Hash node's UUID. UCO 1.4 made hashMethod a plain
# xsd:string drawn from that vocabulary.
_HASH_METHODS: dict[str, tuple[str, str]] = {
    "md5": ("MD5", "md5"),
    "sha1": ("SHA1", "sha1"),
    "sha256": ("SHA256", "sha256"),
    "sha512": ("SHA512", "sha512"),
    "sha3_256": ("SHA3-256", "sha3-256"),
}
_FIRST_EVENTS = ("evidence.ingested", "evidence.registered")
# Characters an IRI path may hold as they are (RFC 3987 ipath without pct-encoded).
_IRI_SAFE = "/:@!$&'()*+,;=-._~"


class InvalidMaterial(ValueError):
    """The events given are not the item's custody history in ledger order."""


@dataclass(frozen=True)
class ExhibitMaterial:
    """One item's record and its events as ``(ledger index, exact leaf bytes)``, in ledger
    order from the first, and the origin of the log that holds them."""

    record: EvidenceRecord
    events: Sequence[tuple[int, bytes]]
    origin: str


def base_iri(origin: str) -> str:
    """The ``kb:`` base IRI of a log's documents: ``https://<origin>/``, percent-encoded."""
    return f"https://{quote(origin.strip('/'), safe=_IRI_SAFE)}/"


def case_document(material: ExhibitMaterial) -> dict[str, Any]:
    """The item's provenance as one CASE JSON-LD document (a dict ready for ``json.dump``).

    Raises InvalidMaterial when an event is not about the item, is out of ledger order or
    breaks the item's ``prev`` chain: the document would otherwise misstate the custody.
    """
    events = _checked_events(material)
    return _Builder(material, events).document()


class CaseExports:
    """Items' CASE documents, for those who may export exhibits (``EXPORT_ROLES``)."""

    def __init__(self, ledger: Ledger, evidence: EvidenceStore, cases: Cases) -> None:
        self.ledger = ledger
        self.evidence = evidence
        self.cases = cases

    def document(self, evidence_id: str, by: Actor) -> dict[str, Any]:
        """The item's provenance as a CASE document; Forbidden for a role that may not export
        exhibits, NotFound for an unknown item or one outside the caller's cases,
        InvalidMaterial for a broken history."""
        require_role(by.role, EXPORT_ROLES, "export exhibits")
        record = self.evidence.get(evidence_id)
        if record is None or not self.cases.scope(by).covers(record.case, record.id):
            raise NotFound(f"no evidence {evidence_id}")
        entries = self.ledger.subject_entries(Subject("evidence", record.id).key)
        material = ExhibitMaterial(record, [(e.index, e.leaf) for e in entries], self.ledger.origin)
        return case_document(material)


def _checked_events(material: ExhibitMaterial) -> list[tuple[int, Event]]:
    subject = Subject("evidence", material.record.id)
    checked: list[tuple[int, Event]] = []
    previous: tuple[int, bytes] | None = None
    for index, leaf in material.events:
        try:
            event = Event.decode(leaf)
        except InvalidEvent as exc:
            raise InvalidMaterial(f"event {index} is not a Custos event: {exc}") from None
        if event.subject != subject:
            raise InvalidMaterial(f"event {index} is about {event.subject.key}, not {subject.key}")
        if previous is None:
            if event.prev is not None or event.type not in _FIRST_EVENTS:
                raise InvalidMaterial(f"event {index} is not the item's first event")
        else:
            if index <= previous[0]:
                raise InvalidMaterial(f"event {index} comes after event {previous[0]}")
            if event.prev != leaf_hash(previous[1]).hex():
                raise InvalidMaterial(f"event {index} does not follow event {previous[0]}")
        checked.append((index, event))
        previous = (index, leaf)
    return checked


def _ref(iri: str) -> dict[str, str]:
    return {"@id": iri}


def _typed(datatype: str, value: str) -> dict[str, str]:
    return {"@type": datatype, "@value": value}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else canonical_json(value).decode()


def _details(data: Mapping[str, Any]) -> str:
    """An event's data as ``name: value`` lines, in key order."""
    return "\n".join(f"{name}: {_text(data[name])}" for name in sorted(data))


class _Builder:
    """Builds one document's graph; nodes are kept once each, in the order first added."""

    def __init__(self, material: ExhibitMaterial, events: list[tuple[int, Event]]) -> None:
        self.material = material
        self.record = material.record
        self.events = events
        self.base = base_iri(material.origin)
        self.namespace = uuid.uuid5(uuid.NAMESPACE_URL, self.base)
        self.nodes: dict[str, dict[str, Any]] = {}

    def iri(self, local_class: str, name: str) -> str:
        """``kb:<Class>-<UUIDv5 of a Custos name under the log's namespace>``."""
        return f"kb:{local_class}-{uuid.uuid5(self.namespace, name)}"

    def inherent_iri(self, owner: str, class_prefix: str, local_class: str) -> str:
        """A facet's or reference's IRI from its owner's UUID and its class IRI (the
        ``inherent_uuid`` scheme of case-utils)."""
        owner_uuid = uuid.UUID(owner[-36:])
        class_iri = CONTEXT[class_prefix] + local_class
        return f"kb:{local_class}-{uuid.uuid5(owner_uuid, class_iri)}"

    def add(self, node: dict[str, Any]) -> str:
        iri: str = node["@id"]
        self.nodes.setdefault(iri, node)
        return iri

    def document(self) -> dict[str, Any]:
        record = self.record
        investigation = self.iri("Investigation", f"case:{record.case}")
        artifact = self.artifact()
        records = [self.provenance_record(artifact, None, None)]
        actions: list[str] = []
        for index, event in self.events:
            before = records[-1]
            records.append(self.provenance_record(artifact, index, event))
            actions.append(self.action(index, event, artifact, before, records[-1]))
        self.add(
            {
                "@id": investigation,
                "@type": "case-investigation:Investigation",
                "uco-core:name": record.case,
                "uco-core:object": [_ref(i) for i in (artifact, *records, *actions)],
            }
        )
        # The investigation first, then everything in the order it was first referred to.
        graph = [self.nodes.pop(investigation), *self.nodes.values()]
        return {"@context": {"kb": self.base, **CONTEXT}, "@graph": graph}

    def artifact(self) -> str:
        record = self.record
        digital = record.kind == "digital"
        iri = self.iri("File" if digital else "ObservableObject", f"evidence:{record.id}")
        node: dict[str, Any] = {
            "@id": iri,
            "@type": "uco-observable:File" if digital else "uco-observable:ObservableObject",
            "uco-core:name": record.exhibit,
        }
        text = record.description.get("description")
        if isinstance(text, str):
            node["uco-core:description"] = text
        self.add(node)
        node["uco-core:externalReference"] = _ref(
            self.external_reference(iri, "Custos evidence id", record.id)
        )
        if record.digests or record.size is not None:
            node["uco-core:hasFacet"] = [_ref(self.content_facet(iri))]
        return iri

    def content_facet(self, artifact: str) -> str:
        record = self.record
        node: dict[str, Any] = {
            "@id": self.inherent_iri(artifact, "uco-observable", "ContentDataFacet"),
            "@type": "uco-observable:ContentDataFacet",
        }
        if record.size is not None:
            node["uco-observable:sizeInBytes"] = _typed("xsd:integer", str(record.size))
        media_type = record.description.get("media_type")
        if isinstance(media_type, str):
            node["uco-observable:mimeType"] = media_type
        self.add(node)
        if record.digests:
            node["uco-observable:hash"] = [
                _ref(self.hash(name, value)) for name, value in sorted(record.digests.items())
            ]
        return str(node["@id"])

    def hash(self, algorithm: str, hex_value: str) -> str:
        try:
            method, seed_name = _HASH_METHODS[algorithm]
        except KeyError:
            raise InvalidMaterial(f"no UCO hash method for the digest {algorithm!r}") from None
        value = hex_value.lower()
        seed = uuid.uuid5(uuid.NAMESPACE_URL, f"urn:hash::{seed_name}:{value}")
        return self.add(
            {
                "@id": f"kb:Hash-{seed}",
                "@type": "uco-types:Hash",
                "uco-types:hashMethod": method,
                "uco-types:hashValue": _typed("xsd:hexBinary", value),
            }
        )

    def external_reference(self, owner: str, context: str, identifier: str) -> str:
        return self.add(
            {
                "@id": self.inherent_iri(owner, "uco-core", "ExternalReference"),
                "@type": "uco-core:ExternalReference",
                "uco-core:definingContext": f"{context} (log {self.material.origin})",
                "uco-core:externalIdentifier": identifier,
            }
        )

    def provenance_record(self, artifact: str, index: int | None, event: Event | None) -> str:
        record = self.record
        if index is None or event is None:
            iri = self.iri("ProvenanceRecord", f"evidence:{record.id}/provenance/initial")
            description = f"{record.exhibit} as handed over, before Custos recorded it"
            acquisition = record.description.get("acquisition")
            if isinstance(acquisition, Mapping) and acquisition:
                description += "; acquisition:\n" + _details(acquisition)
        else:
            iri = self.iri("ProvenanceRecord", f"evidence:{record.id}/provenance/{index}")
            description = f"{record.exhibit} after {event.type} (ledger index {index})"
        return self.add(
            {
                "@id": iri,
                "@type": "case-investigation:ProvenanceRecord",
                "case-investigation:exhibitNumber": record.exhibit,
                "uco-core:description": description,
                "uco-core:object": [_ref(artifact)],
            }
        )

    def action(self, index: int, event: Event, artifact: str, before: str, after: str) -> str:
        iri = self.iri("InvestigativeAction", f"ledger:{index}")
        node: dict[str, Any] = {
            "@id": iri,
            "@type": "case-investigation:InvestigativeAction",
            "uco-core:name": event.type,
            "uco-action:startTime": _typed("xsd:dateTime", event.time),
            "uco-action:performer": _ref(self.performer(event.actor.id, event.actor.role)),
            "uco-action:object": [_ref(before), _ref(artifact)],
            "uco-action:result": [_ref(after)],
        }
        if event.data:
            node["uco-core:description"] = _details(event.data)
        location = event.data.get("location")
        if isinstance(location, str):
            node["uco-action:location"] = _ref(self.location(location))
        authority = event.data.get("authority")
        if event.type in _FIRST_EVENTS:
            authority = self.record.description.get("authority")
        if isinstance(authority, str):
            node["uco-action:instrument"] = [_ref(self.authorization(authority))]
        self.add(node)
        node["uco-core:externalReference"] = _ref(
            self.external_reference(iri, "Custos ledger index", str(index))
        )
        return iri

    def performer(self, principal_id: str, role_name: str) -> str:
        identity = self.add(
            {
                "@id": self.iri("Identity", f"principal:{principal_id}"),
                "@type": "uco-identity:Identity",
                "uco-core:name": principal_id,
            }
        )
        role = self.add(
            {
                "@id": self.iri("Role", f"role:{role_name}"),
                "@type": "uco-role:Role",
                "uco-core:name": role_name,
            }
        )
        self.add(
            {
                "@id": self.iri("Relationship", f"principal:{principal_id}/role:{role_name}"),
                "@type": "uco-core:Relationship",
                "uco-core:source": [_ref(identity)],
                "uco-core:target": _ref(role),
                "uco-core:kindOfRelationship": "Has_Role",
                "uco-core:isDirectional": True,
            }
        )
        return identity

    def location(self, text: str) -> str:
        return self.add(
            {
                "@id": self.iri("Location", f"location:{text}"),
                "@type": "uco-location:Location",
                "uco-core:name": text,
            }
        )

    def authorization(self, text: str) -> str:
        return self.add(
            {
                "@id": self.iri("Authorization", f"authority:{text}"),
                "@type": "case-investigation:Authorization",
                "case-investigation:authorizationIdentifier": text,
            }
        )
