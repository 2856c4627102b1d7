"""The order document an authority issues: its parts, their validation and their JSON.

An order is a production order (UN Convention against Cybercrime Art 27, Budapest Art 18,
the EU's EPOC), a preservation order (UN Art 25, Budapest Art 16, the EU's EPOC-PR) or an
expedited partial disclosure of traffic data (UN Art 26, Budapest Art 17). Its document checks
itself when built, naming every field at fault at once (FieldErrors), each with why.
"""

from __future__ import annotations

import ipaddress
import json
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from functools import cache
from types import UnionType
from typing import Any, ClassVar, TypeVar

from custody.errors import BadRequest, Faults, FieldErrors, FieldFault
from custody.events import format_time
from custody.order_deadlines import (
    DEFAULT_PRESERVATION_DAYS,
    EU_PRESERVATION_DAYS,
    MAX_PRESERVATION_DAYS,
    check_time_zone,
)

PRODUCTION = "production"
PRESERVATION = "preservation"
PARTIAL_TRAFFIC_DISCLOSURE = "partial_traffic_disclosure"
KINDS = (PRODUCTION, PRESERVATION, PARTIAL_TRAFFIC_DISCLOSURE)

# Each legal basis and the kinds of order it founds.
LEGAL_BASES: Mapping[str, tuple[str, ...]] = {
    "un_cybercrime_art25": (PRESERVATION,),
    "un_cybercrime_art26": (PRESERVATION, PARTIAL_TRAFFIC_DISCLOSURE),
    "un_cybercrime_art27": (PRODUCTION,),
    "budapest_art16": (PRESERVATION,),
    "budapest_art17": (PRESERVATION, PARTIAL_TRAFFIC_DISCLOSURE),
    "budapest_art18": (PRODUCTION,),
    "budapest_protocol2_art6": (PRODUCTION,),
    "budapest_protocol2_art7": (PRODUCTION,),
    "eu_2023_1543_epoc": (PRODUCTION,),
    "eu_2023_1543_epoc_pr": (PRESERVATION,),
    "national_law": KINDS,
}
# Second Protocol Art 6 reaches domain name registration data, Art 7 subscriber data only.
_BASIS_CATEGORIES = {
    "budapest_protocol2_art6": ("domain_registration",),
    "budapest_protocol2_art7": ("subscriber",),
}
AUTHORITY_TYPES = ("judge", "court", "prosecutor", "other")
TARGET_TYPES = ("account", "email", "phone", "ip", "device_id", "domain", "other")
DATA_CATEGORIES = ("subscriber", "identification_only", "traffic", "content", "domain_registration")
# Regulation (EU) 2023/1543 Art 3(18); Budapest Second Protocol Art 9.
EMERGENCY_CATEGORIES = (
    "threat_to_life",
    "threat_to_physical_integrity",
    "threat_to_safety",
    "threat_to_critical_infrastructure",
)
# Regulation (EU) 2023/1543, Annex III (the provider's reasons it cannot comply).
OBJECTION_GROUNDS = (
    "incomplete",
    "manifest_error",
    "insufficient_information",
    "data_not_stored",
    "data_not_held",
    "de_facto_impossible",
    "issuer_not_competent",
    "offence_not_covered",
    "service_out_of_scope",
    "privilege_or_immunity",
    "third_country_law_conflict",
    "other",
)
GROUNDS_NEEDING_DETAILS = ("third_country_law_conflict", "other")
# Regulation (EU) 2023/1543 Art 5(4)(b)-(c): offences an order for traffic or content data may
# serve whatever their penalty, each by the act that defines it.
LISTED_OFFENCES: Mapping[str, str] = {
    "non_cash_payment_fraud": "Directive (EU) 2019/713, Arts 3 to 8",
    "child_sexual_abuse": "Directive 2011/93/EU, Arts 3 to 7",
    "attacks_against_information_systems": "Directive 2013/40/EU, Arts 3 to 8",
    "terrorism": "Directive (EU) 2017/541, Arts 3 to 12 and 14 to 17",
}
# Art 5(4)(a): punishable in the issuing State by a custodial sentence of a maximum of at
# least three years.
THRESHOLD_YEARS = 3
# Art 8(1), Art 5(4): the data whose production the enforcing State reviews (traffic data other
# than data requested only to identify the user, and content data).
REVIEWED_CATEGORIES = frozenset({"traffic", "content"})

# The official languages of the Union (Regulation No 1) that each Member State has as its own:
# an EU order may be in one of them for its enforcing State (Regulation (EU) 2023/1543 Art 9).
OFFICIAL_LANGUAGES: Mapping[str, tuple[str, ...]] = {
    "AT": ("de",),
    "BE": ("nl", "fr", "de"),
    "BG": ("bg",),
    "CY": ("el",),
    "CZ": ("cs",),
    "DE": ("de",),
    "DK": ("da",),
    "EE": ("et",),
    "ES": ("es",),
    "FI": ("fi", "sv"),
    "FR": ("fr",),
    "GR": ("el",),
    "HR": ("hr",),
    "HU": ("hu",),
    "IE": ("ga", "en"),
    "IT": ("it",),
    "LT": ("lt",),
    "LU": ("fr", "de"),
    "LV": ("lv",),
    "MT": ("mt", "en"),
    "NL": ("nl",),
    "PL": ("pl",),
    "PT": ("pt",),
    "RO": ("ro",),
    "SE": ("sv",),
    "SI": ("sl",),
    "SK": ("sk",),
}

MAX_TEXT = 20_000
MAX_LINE = 1_000
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
ORDER_ID_PATTERN = re.compile(r"^ord_[0-9a-f]{16}$")
_SURROGATE = re.compile("[\ud800-\udfff]")
HEX32 = re.compile(r"^[0-9a-f]{64}$")
_T = TypeVar("_T")


class Reported:
    """Stands for a value whose faults were already named (a part that did not parse): the
    checks of the part around it skip it, so that each fault is named once."""

    def __repr__(self) -> str:
        return "<reported>"


REPORTED: Any = Reported()


def check_text(value: object, where: str, limit: int = MAX_TEXT) -> None:
    if value is REPORTED:
        return
    if not isinstance(value, str) or not value.strip():
        raise FieldFault(where, "is required, as non-empty text")
    if len(value) > limit:
        raise FieldFault(where, f"is longer than {limit} characters")
    if _SURROGATE.search(value):
        raise FieldFault(where, "holds a lone surrogate, which is not text")


def check_choice(value: object, choices: Sequence[str], where: str) -> None:
    if value is REPORTED:
        return
    if not isinstance(value, str) or value not in choices:
        raise FieldFault(where, f"is one of {', '.join(choices)}, not {value!r}")


def check_language(value: object, where: str) -> str:
    """A BCP 47 language tag (``en``, ``pt-BR``)."""
    if value is REPORTED:
        return ""
    if not isinstance(value, str) or not _LANGUAGE.match(value):
        raise FieldFault(where, f"is a BCP 47 tag such as 'en' or 'pt-BR', not {value!r}")
    return value


def _primary(tag: str) -> str:
    return tag.split("-", 1)[0].lower()


def check_state(value: object, where: str) -> None:
    """An ISO 3166-1 alpha-2 code of a State (``PT``)."""
    if value is REPORTED:
        return
    if not isinstance(value, str) or not _COUNTRY.match(value):
        raise FieldFault(where, f"is an ISO 3166-1 alpha-2 code such as PT, not {value!r}")


def check_utc(value: object, where: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise FieldFault(where, "must be a timezone-aware date and time")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 is a valid RFC 3339 time that falls before year 1 in UTC.
        raise FieldFault(where, "is outside the years 1 to 9999 in UTC") from None


def set_utc(obj: object, name: str, where: str) -> None:
    value = getattr(obj, name)
    if value is not None and value is not REPORTED:
        object.__setattr__(obj, name, check_utc(value, where))


@dataclass(frozen=True)
class LegalBasis:
    """The provision the order rests on: one of ``LEGAL_BASES``, and its full citation."""

    _LABEL: ClassVar[str] = "legal_basis"
    instrument: str
    citation: str

    def __post_init__(self) -> None:
        faults = Faults()
        faults.check(check_choice, self.instrument, tuple(LEGAL_BASES), "legal_basis.instrument")
        faults.check(check_text, self.citation, "legal_basis.citation", MAX_LINE)
        faults.raise_any()


def _check_country(value: object, where: str) -> None:
    if value is not None:
        check_state(value, where)


@dataclass(frozen=True)
class Authority:
    """An issuing or validating authority, as the provider is to contact it."""

    _LABEL: ClassVar[str] = "authority"
    name: str
    type: str
    file_number: str
    contact: str
    state: str | None = None  # the State it acts for, ISO 3166-1 alpha-2

    def __post_init__(self) -> None:
        faults = Faults()
        faults.check(check_text, self.name, "authority.name", MAX_LINE)
        faults.check(check_choice, self.type, AUTHORITY_TYPES, "authority.type")
        faults.check(check_text, self.file_number, "authority.file_number", MAX_LINE)
        faults.check(check_text, self.contact, "authority.contact", MAX_LINE)
        faults.check(_check_country, self.state, "authority.state")
        faults.raise_any()


def _check_years(years: object, where: str) -> None:
    if (
        years is not None
        and years is not REPORTED
        and (type(years) is not int or not 0 <= years <= 100)
    ):
        raise FieldFault(where, f"is from 0 to 100, not {years!r}")


def _check_zone(value: object, where: str) -> None:
    if value is REPORTED:
        return
    try:
        check_time_zone(value)
    except ValueError as exc:
        raise FieldFault(where, str(exc).removeprefix("time_zone ")) from None


@dataclass(frozen=True)
class EnforcingAuthority:
    """The authority of the enforcing State (Regulation (EU) 2023/1543 Art 3(17), Art 8): the
    Member State where the addressee's designated establishment or legal representative is.

    It does not sign in: Custos sends it the order as a signed notice to ``notification_url``
    (through the outgoing-request policy) and the issuing authority records its answer.
    ``time_zone`` is where its ten days end (Regulation 1182/71, in its State).
    """

    _LABEL: ClassVar[str] = "enforcing_authority"
    name: str
    state: str
    contact: str
    time_zone: str
    notification_url: str | None = None

    def __post_init__(self) -> None:
        faults = Faults()
        faults.check(check_text, self.name, "enforcing_authority.name", MAX_LINE)
        faults.check(check_text, self.contact, "enforcing_authority.contact", MAX_LINE)
        faults.check(check_state, self.state, "enforcing_authority.state")
        faults.check(_check_zone, self.time_zone, "enforcing_authority.time_zone")
        if self.notification_url is not None:
            faults.check(
                check_text, self.notification_url, "enforcing_authority.notification_url", MAX_LINE
            )
        faults.raise_any()


@dataclass(frozen=True)
class Offence:
    """The offence, its maximum custodial sentence in the issuing State (in years) and, where
    one applies, the category of Art 5(4)(b)-(c) and of Annex IV (the enforcing State's
    dual-criminality check, Art 12(1)(d)) of Regulation (EU) 2023/1543."""

    _LABEL: ClassVar[str] = "offence"
    description: str
    provision: str
    max_penalty_years: int | None = None
    listed_category: str | None = None
    annex_iv_category: str | None = None

    def __post_init__(self) -> None:
        faults = Faults()
        faults.check(check_text, self.description, "offence.description")
        faults.check(check_text, self.provision, "offence.provision", MAX_LINE)
        faults.check(_check_years, self.max_penalty_years, "offence.max_penalty_years")
        if self.listed_category is not None:
            faults.check(
                check_choice,
                self.listed_category,
                tuple(LISTED_OFFENCES),
                "offence.listed_category",
            )
        if self.annex_iv_category is not None:
            faults.check(check_text, self.annex_iv_category, "offence.annex_iv_category", MAX_LINE)
        faults.raise_any()


@dataclass(frozen=True)
class Target:
    """Whose data: an account, address, number, device or domain; an IP address with the
    time it was used (and the source port behind carrier-grade NAT), since who held it
    depends on when."""

    _LABEL: ClassVar[str] = "target"
    type: str
    value: str
    port: int | None = None
    time: datetime | None = None

    def __post_init__(self) -> None:
        faults = Faults()
        typed = faults.check(check_choice, self.type, TARGET_TYPES, "target.type")
        valued = faults.check(check_text, self.value, "target.value", MAX_LINE)
        if typed and self.type is not REPORTED and self.type != "ip":
            for name in ("port", "time"):
                if getattr(self, name) not in (None, REPORTED):
                    faults.note(f"target.{name}", "is for an ip target only")
        elif typed and self.type == "ip":
            if valued and self.value is not REPORTED:
                faults.check(_check_ip, self.value)
            if self.time is None:
                faults.note("target.time", "is required for an ip target")
            faults.check(set_utc, self, "time", "target.time")
            faults.check(_check_port, self.port)
        faults.raise_any()


def _check_ip(value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise FieldFault("target.value", f"{value!r} is not an IP address") from None


def _check_port(port: object) -> None:
    if (
        port is not None
        and port is not REPORTED
        and (type(port) is not int or not 0 <= port <= 0xFFFF)
    ):
        raise FieldFault("target.port", f"is a port number from 0 to 65535, not {port!r}")


@dataclass(frozen=True)
class TimeRange:
    _LABEL: ClassVar[str] = "time_range"
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        faults = Faults()
        started = faults.check(set_utc, self, "start", "time_range.start")
        ended = faults.check(set_utc, self, "end", "time_range.end")
        for name in ("start", "end"):
            if getattr(self, name) is None:
                faults.note(f"time_range.{name}", "is required")
        given = self.start not in (None, REPORTED) and self.end not in (None, REPORTED)
        if started and ended and given and self.end <= self.start:
            faults.note("time_range.end", "must be after time_range.start")
        faults.raise_any()


@dataclass(frozen=True)
class Emergency:
    """An imminent threat that shortens the time to produce to 8 hours."""

    _LABEL: ClassVar[str] = "emergency"
    flag: bool = False
    category: str | None = None
    justification: str | None = None

    def __post_init__(self) -> None:
        faults = Faults()
        if self.flag is True:
            faults.check(check_choice, self.category, EMERGENCY_CATEGORIES, "emergency.category")
            faults.check(check_text, self.justification, "emergency.justification")
        elif self.flag is False:
            for name in ("category", "justification"):
                if getattr(self, name) not in (None, REPORTED):
                    faults.note(f"emergency.{name}", "needs emergency.flag")
        elif self.flag is not REPORTED:
            faults.note("emergency.flag", "is true or false")
        faults.raise_any()


@dataclass(frozen=True)
class Confidentiality:
    """Whether the provider must not tell the user, until when, and the short justification
    of that order (Regulation (EU) 2023/1543 Art 13(2): required for an EU order)."""

    _LABEL: ClassVar[str] = "confidentiality"
    no_user_notice: bool = False
    until: datetime | None = None
    reasons: str | None = None

    def __post_init__(self) -> None:
        faults = Faults()
        if not isinstance(self.no_user_notice, bool) and self.no_user_notice is not REPORTED:
            faults.note("confidentiality.no_user_notice", "is true or false")
        elif self.no_user_notice is False:
            if self.until not in (None, REPORTED):
                faults.note("confidentiality.until", "needs confidentiality.no_user_notice")
            if self.reasons not in (None, REPORTED):
                faults.note("confidentiality.reasons", "needs confidentiality.no_user_notice")
        if self.reasons is not None:
            faults.check(check_text, self.reasons, "confidentiality.reasons")
        faults.check(set_utc, self, "until", "confidentiality.until")
        faults.raise_any()


# Regulation (EU) 2023/1543 Art 7 and Annex I: an order goes to the provider's designated
# establishment or its legal representative; in an emergency it may go to any of its
# establishments or legal representatives in the Union.
ADDRESSEE_TYPES = ("designated_establishment", "legal_representative")
EMERGENCY_ADDRESSEE_TYPES = (*ADDRESSEE_TYPES, "establishment")


@dataclass(frozen=True)
class Addressee:
    """Whom, of the provider, the order is addressed to (Annex I), and in which State."""

    _LABEL: ClassVar[str] = "addressee"
    type: str
    name: str
    state: str
    contact: str

    def __post_init__(self) -> None:
        faults = Faults()
        faults.check(check_choice, self.type, EMERGENCY_ADDRESSEE_TYPES, "addressee.type")
        faults.check(check_text, self.name, "addressee.name", MAX_LINE)
        faults.check(check_state, self.state, "addressee.state")
        faults.check(check_text, self.contact, "addressee.contact", MAX_LINE)
        faults.raise_any()


@dataclass(frozen=True)
class ReceivingAuthority:
    """The authority the data are to be transferred to, where not the issuing one (Annex I)."""

    _LABEL: ClassVar[str] = "receiving_authority"
    name: str
    contact: str

    def __post_init__(self) -> None:
        faults = Faults()
        faults.check(check_text, self.name, "receiving_authority.name", MAX_LINE)
        faults.check(check_text, self.contact, "receiving_authority.contact", MAX_LINE)
        faults.raise_any()


@dataclass(frozen=True)
class OrderDocument:
    """What the authority orders: the fields of the EU's EPOC / EPOC-PR forms, for any basis.

    ``link`` is the link between the data and the offence. ``preservation_days`` is the hold of
    a preservation order (90 unless set) and absent from any other kind.

    Built, it checks every field and names each one at fault at once (FieldErrors); a rule
    that joins several fields is checked once those fields are sound.
    """

    reference: str
    case: str
    kind: str
    legal_basis: LegalBasis
    issuing_authority: Authority
    provider: str
    offence: Offence
    facts: str
    link: str
    necessity_and_proportionality: str
    targets: tuple[Target, ...]
    data_categories: tuple[str, ...]
    validating_authority: Authority | None = None
    time_range: TimeRange | None = None
    emergency: Emergency = field(default_factory=Emergency)
    confidentiality: Confidentiality = field(default_factory=Confidentiality)
    preservation_days: int | None = None
    linked_order: str | None = None
    return_channel: str = "custos"
    language: str = "en"
    enforcing_authority: EnforcingAuthority | None = None
    # Regulation (EU) 2023/1543 Art 8(2): where the offence was, is being or is likely to be
    # committed, and where the person whose data are sought resides (None: not known).
    offence_state: str | None = None
    residence_state: str | None = None
    # Annex I: the designated establishment or legal representative it is addressed to, the
    # one addressed in an emergency, and the authority the data go to.
    addressee: Addressee | None = None
    emergency_addressee: Addressee | None = None
    receiving_authority: ReceivingAuthority | None = None
    # Budapest Art 29(2)(d): the custodian of the data or the location of the system;
    # Art 29(2)(f): whether a request for mutual assistance will follow.
    custodian: str | None = None
    system_location: str | None = None
    mla_request_intended: bool | None = None

    def __post_init__(self) -> None:
        faults = Faults()
        for name in ("reference", "case", "provider", "return_channel"):
            faults.check(check_text, getattr(self, name), name, MAX_LINE)
        for name in ("facts", "link", "necessity_and_proportionality"):
            faults.check(check_text, getattr(self, name), name)
        kind = faults.check(check_choice, self.kind, KINDS, "kind") and self.kind is not REPORTED
        parts = True
        for name, cls in _PARTS.items():
            value = getattr(self, name)
            if value is REPORTED:
                parts = False
            elif not isinstance(value, cls) and (value is not None or name not in _OPTIONAL):
                faults.note(name, f"is required, as a {cls.__name__} object")
                parts = False
        if self.linked_order is not None:
            faults.check(check_text, self.linked_order, "linked_order", MAX_LINE)
        faults.check(check_language, self.language, "language")
        faults.check(self._check_targets)
        # The rules that join several fields, once the fields they read are sound.
        if kind and self.data_categories is not REPORTED:
            categories = faults.check(self._check_categories)
            if parts and categories:
                faults.check(self._check_basis)
                faults.check(self._check_competence)
        if kind and parts:
            faults.check(self._check_preservation_days)
        if parts:
            faults.check(self._check_enforcing)
            faults.check(self._check_addressees)
        faults.raise_any()

    def _check_targets(self) -> None:
        if self.targets is REPORTED:
            return
        if not isinstance(self.targets, tuple | list) or not self.targets:
            raise FieldFault("targets", "names no target: an order names at least one")
        object.__setattr__(self, "targets", tuple(self.targets))
        faults = Faults()
        for i, target in enumerate(self.targets):
            if not isinstance(target, Target) and target is not REPORTED:
                faults.note(f"targets[{i}]", "is not a target")
        faults.raise_any()

    def _check_categories(self) -> None:
        given = self.data_categories
        if not isinstance(given, tuple | list) or not given:
            raise FieldFault(
                "data_categories", f"names no data: a {self.kind} order names the data it concerns"
            )
        faults = Faults()
        for i, category in enumerate(given):
            faults.check(check_choice, category, DATA_CATEGORIES, f"data_categories[{i}]")
        if len(set(map(str, given))) != len(given):
            faults.note("data_categories", "names a category twice")
        faults.raise_any()
        categories = tuple(c for c in DATA_CATEGORIES if c in given)
        object.__setattr__(self, "data_categories", categories)
        if self.kind == PARTIAL_TRAFFIC_DISCLOSURE and categories != ("traffic",):
            raise FieldFault("data_categories", "of a partial traffic disclosure is traffic only")

    def _check_basis(self) -> None:
        basis = self.legal_basis.instrument
        if self.kind not in LEGAL_BASES[basis]:
            raise FieldFault(
                "legal_basis.instrument", f"{basis} does not found a {self.kind} order"
            )
        reach = _BASIS_CATEGORIES.get(basis, DATA_CATEGORIES)
        if not set(self.data_categories) <= set(reach):
            raise FieldFault("data_categories", f"under {basis} are {', '.join(reach)} only")

    def _check_preservation_days(self) -> None:
        days = self.preservation_days
        if days is REPORTED:
            return
        if self.kind != PRESERVATION:
            if days is not None:
                raise FieldFault("preservation_days", "is for a preservation order only")
            return
        if self.legal_basis.instrument.startswith("eu_"):
            # Regulation (EU) 2023/1543 Art 11(1): an EPOC-PR holds for 60 days.
            if days not in (None, EU_PRESERVATION_DAYS):
                raise FieldFault(
                    "preservation_days",
                    f"of an EU preservation order is {EU_PRESERVATION_DAYS} "
                    "(Regulation (EU) 2023/1543 Art 11(1))",
                )
            object.__setattr__(self, "preservation_days", EU_PRESERVATION_DAYS)
        elif days is None:
            object.__setattr__(self, "preservation_days", DEFAULT_PRESERVATION_DAYS)
        elif type(days) is not int or not 1 <= days <= MAX_PRESERVATION_DAYS:
            raise FieldFault(
                "preservation_days", f"is from 1 to {MAX_PRESERVATION_DAYS}, not {days!r}"
            )

    def needs_threshold(self) -> bool:
        """Regulation (EU) 2023/1543 Art 5(4): an EU order to produce traffic data (other
        than data requested only to identify the user) or content."""
        return (
            self.legal_basis.instrument.startswith("eu_")
            and self.kind == PRODUCTION
            and not REVIEWED_CATEGORIES.isdisjoint(self.data_categories)
        )

    def enforcing_review(self) -> bool:
        """Regulation (EU) 2023/1543 Art 8(1): the enforcing State reviews an EU order to
        produce traffic data (other than data requested only to identify the user) or
        content, the same orders Art 5(4) binds to the threshold."""
        return self.needs_threshold()

    def notice_exempt(self) -> bool:
        """Art 8(2): no notice where the offence has been, is being or is likely to be
        committed in the issuing State and the person whose data are sought resides there,
        as the drafter states both (an unknown place is no ground for the exemption)."""
        issuing = self.issuing_authority.state
        return issuing is not None and self.offence_state == self.residence_state == issuing

    def notifies_enforcing_state(self) -> bool:
        """Whether issuing the order sends the enforcing authority a notice (Art 8(1)-(2))."""
        return (
            self.enforcing_review()
            and self.enforcing_authority is not None
            and not self.notice_exempt()
        )

    def check_enforcing_state(self, provider_country: str | None) -> None:
        """Refuse to issue an order that Art 8 requires to name the enforcing State and
        authority but does not, or whose notice has nowhere to go. ``provider_country`` is
        where the addressee is established, when known."""
        if not self.enforcing_review():
            return
        issuing = self.issuing_authority.state
        enforcing = self.enforcing_authority
        where = self.addressee.state if self.addressee is not None else provider_country
        if enforcing is None:
            if where is not None and where != issuing:
                raise BadRequest(
                    f"enforcing_authority is required: the addressee is established in "
                    f"{where}, not in the issuing State {issuing} "
                    "(Regulation (EU) 2023/1543, Art 8(1))"
                )
            return
        if self.notifies_enforcing_state() and enforcing.notification_url is None:
            raise BadRequest(
                "enforcing_authority.notification_url is required: the enforcing authority is "
                "sent the order when it is issued (Regulation (EU) 2023/1543, Art 8(1))"
            )

    def check_languages(self, accepted: Sequence[str], provider_country: str | None) -> None:
        """Refuse to issue an EU order in a language that is neither an official language of
        its enforcing State nor one the provider accepts (Regulation (EU) 2023/1543 Art 9).
        The enforcing State is the enforcing authority's, else the addressee's, else the
        provider's country; languages compare by their primary subtag (``pt-BR`` is ``pt``).
        Where neither is known, nothing is checked."""
        if not self.legal_basis.instrument.startswith("eu_"):
            return
        if self.enforcing_authority is not None:
            state: str | None = self.enforcing_authority.state
        elif self.addressee is not None:
            state = self.addressee.state
        else:
            state = provider_country
        official = OFFICIAL_LANGUAGES.get(state or "", ())
        allowed = [*official, *(_primary(tag) for tag in accepted)]
        if not allowed or _primary(self.language) in allowed:
            return
        raise BadRequest(
            f"language {self.language} is neither an official language of {state} nor one the "
            f"provider accepts; it may be {', '.join(dict.fromkeys(allowed))} "
            "(Regulation (EU) 2023/1543, Art 9)"
        )

    def check_confidentiality(self) -> None:
        """Refuse to issue an EU order that keeps the user uninformed without saying briefly
        why (Regulation (EU) 2023/1543 Art 13(2)). Checked at issue, not when a document is
        read, so that orders kept from before the rule still read."""
        eu = self.legal_basis.instrument.startswith("eu_")
        if eu and self.confidentiality.no_user_notice and self.confidentiality.reasons is None:
            raise BadRequest(
                "confidentiality.reasons is required: an EU order that keeps the user "
                "uninformed says briefly why (Regulation (EU) 2023/1543, Art 13(2))"
            )

    def _check_addressees(self) -> None:
        """Annex I and Budapest Art 29(2): who receives what, and where the data are."""
        for name in ("custodian", "system_location"):
            if getattr(self, name) is not None:
                check_text(getattr(self, name), name, MAX_LINE)
        if self.mla_request_intended is not None and not isinstance(
            self.mla_request_intended, bool
        ):
            raise FieldFault("mla_request_intended", "is true or false")
        if self.addressee is not None and self.addressee.type not in ADDRESSEE_TYPES:
            raise FieldFault(
                "addressee.type",
                f"is one of {', '.join(ADDRESSEE_TYPES)} (Regulation (EU) 2023/1543, Art 7(1))",
            )
        if self.emergency_addressee is not None and not self.emergency.flag:
            raise FieldFault("emergency_addressee", "needs emergency.flag")
        enforcing, addressee = self.enforcing_authority, self.addressee
        if enforcing is not None and addressee is not None and enforcing.state != addressee.state:
            raise FieldFault(
                "enforcing_authority.state",
                f"is the State of the addressee, {addressee.state} "
                "(Regulation (EU) 2023/1543, Art 3(17))",
            )

    def _check_enforcing(self) -> None:
        for name in ("offence_state", "residence_state"):
            if getattr(self, name) is not None:
                check_state(getattr(self, name), name)
        enforcing = self.enforcing_authority
        if enforcing is None:
            return
        if not self.legal_basis.instrument.startswith("eu_"):
            raise FieldFault(
                "enforcing_authority", "is for an EU order (Regulation (EU) 2023/1543)"
            )
        if enforcing.state == self.issuing_authority.state:
            raise FieldFault(
                "enforcing_authority.state",
                "is another Member State than the issuing State "
                "(Regulation (EU) 2023/1543, Art 3(17))",
            )

    def check_threshold(self) -> None:
        """Refuse to issue an order Art 5(4) does not allow, naming the article."""
        if not self.needs_threshold():
            return
        offence = self.offence
        if offence.listed_category is not None:
            return
        years = offence.max_penalty_years
        if years is None or years < THRESHOLD_YEARS:
            given = "not given" if years is None else f"{years} years"
            raise BadRequest(
                "offence: an EU order for traffic or content data needs an offence punishable "
                f"by a maximum custodial sentence of at least {THRESHOLD_YEARS} years "
                f"(here {given}) or one of the offences Art 5(4)(b)-(c) lists "
                "(Regulation (EU) 2023/1543, Art 5(4))"
            )

    def _competent(self) -> tuple[str, ...]:
        intrusive = self.kind == PRODUCTION and not REVIEWED_CATEGORIES.isdisjoint(
            self.data_categories
        )
        return ("judge", "court") if intrusive else ("judge", "court", "prosecutor")

    def needs_validation(self) -> bool:
        """Regulation (EU) 2023/1543 Art 4(1)(b), 4(2)(b), 4(3)(b): an EU order from an
        authority that may not issue it alone is validated, as an act of its own, before it
        is issued."""
        return (
            self.legal_basis.instrument.startswith("eu_")
            and self.issuing_authority.type not in self._competent()
        )

    def _check_competence(self) -> None:
        """Regulation (EU) 2023/1543 Art 4: a prosecutor may issue an EU order except one
        producing traffic or content data, which needs a judge or court; anyone else's order
        must be validated by one who may issue it."""
        if not self.legal_basis.instrument.startswith("eu_"):
            return
        if self.issuing_authority.state is None:
            raise FieldFault(
                "issuing_authority.state",
                "is required: an EU order names its issuing State "
                "(Regulation (EU) 2023/1543, Art 8 and Annex I)",
            )
        competent = self._competent()
        validator = self.validating_authority
        if self.issuing_authority.type in competent or (validator and validator.type in competent):
            return
        raise FieldFault(
            "validating_authority",
            f"is required: an EU order from a {self.issuing_authority.type} must be validated "
            f"by a {' or '.join(competent)} (Regulation (EU) 2023/1543, Art 4)",
        )

    def as_json(self) -> dict[str, Any]:
        """The document as JSON: times as RFC 3339 UTC, absent optional parts as null.

        A fresh object each call (callers may change it); the document is immutable, so its
        JSON text is built once and parsed again, which is several times faster.
        """
        text = self.__dict__.get("_json_text")
        if text is None:
            text = json.dumps(_to_json(self), ensure_ascii=False, separators=(",", ":"))
            object.__setattr__(self, "_json_text", text)
        result: dict[str, Any] = json.loads(text)
        return result

    @classmethod
    def from_json(cls, data: object) -> OrderDocument:
        """Build a document from its JSON form; FieldErrors names every field at fault, each
        by its full path (``targets[1].time``), with why."""
        return _from_json(cls, data, "")


_PARTS: Mapping[str, type] = {
    "legal_basis": LegalBasis,
    "issuing_authority": Authority,
    "validating_authority": Authority,
    "offence": Offence,
    "time_range": TimeRange,
    "emergency": Emergency,
    "confidentiality": Confidentiality,
    "enforcing_authority": EnforcingAuthority,
    "addressee": Addressee,
    "emergency_addressee": Addressee,
    "receiving_authority": ReceivingAuthority,
}
_OPTIONAL = (
    "validating_authority",
    "time_range",
    "enforcing_authority",
    "addressee",
    "emergency_addressee",
    "receiving_authority",
)


# Fields added after orders were first issued: left out of the JSON while absent, so that a
# document issued before keeps the very text its signed note carries.
_LATER_FIELDS = frozenset(
    {
        "state",
        "max_penalty_years",
        "listed_category",
        "annex_iv_category",
        "enforcing_authority",
        "offence_state",
        "residence_state",
        "reasons",
        "addressee",
        "emergency_addressee",
        "receiving_authority",
        "custodian",
        "system_location",
        "mla_request_intended",
    }
)


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _to_json(getattr(value, f.name))
            for f in fields(value)
            if not (f.name in _LATER_FIELDS and getattr(value, f.name) is None)
        }
    if isinstance(value, tuple):
        return [_to_json(item) for item in value]
    return value


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


@cache
def _shape(cls: Any) -> tuple[dict[str, Field[Any]], dict[str, Any]]:
    """A document part's fields and resolved type hints (resolved once: every stored order
    read builds its document from JSON)."""
    return {f.name: f for f in fields(cls)}, typing.get_type_hints(cls)


def _from_json(cls: type[_T], data: object, where: str) -> _T:
    """A document part from JSON, by its type hints; FieldErrors names every field at fault
    by its full path. A part that does not parse stands as ``REPORTED`` in the part around
    it, whose own fields are still checked."""
    if not isinstance(data, Mapping):
        raise FieldErrors([(where or "document", "must be a JSON object")])
    known, hints = _shape(typing.cast(Any, cls))
    faults = Faults()
    for name in data:
        if name not in known:
            faults.note(_at(where, str(name)), "is not a field of an order document")
    values: dict[str, Any] = {}
    for name, spec in known.items():
        if name in data:
            values[name] = _parsed(faults, hints[name], data[name], _at(where, name))
        elif spec.default is MISSING and spec.default_factory is MISSING:
            faults.note(_at(where, name), "is required")
            values[name] = REPORTED
    built = None
    try:
        built = cls(**values)
    except FieldErrors as exc:
        label: str = getattr(cls, "_LABEL", "")
        faults.found += [_placed(pair, label, where) for pair in exc.errors]
    faults.raise_any()
    return typing.cast(_T, built)


def _placed(fault: tuple[str, str], label: str, where: str) -> tuple[str, str]:
    """A part's fault named by where the part is: ``target.value`` of ``targets[1]`` is
    ``targets[1].value``; a fault the part did not name is the part's own."""
    name, reason = fault
    if not name:
        return where or "document", reason
    if label and (name == label or name.startswith(label + ".")):
        return where + name[len(label) :], reason
    return name, reason


def _parsed(faults: Faults, hint: Any, value: Any, where: str) -> Any:
    """The value from JSON, or ``REPORTED`` with its faults noted."""
    try:
        return _value_from_json(hint, value, where)
    except FieldErrors as exc:
        faults.found += exc.errors
    except FieldFault as exc:
        faults.found.append(exc.pair())
    return REPORTED


def _value_from_json(hint: Any, value: Any, where: str) -> Any:
    if value is None:
        return None
    if isinstance(hint, UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if hint is datetime:
        try:
            return datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise FieldFault(where, "must be an RFC 3339 date and time") from None
    if isinstance(hint, type) and is_dataclass(hint):
        return _from_json(hint, value, where)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list):
            raise FieldFault(where, "must be a list")
        item = typing.get_args(hint)[0]
        faults = Faults()
        items = tuple(_parsed(faults, item, v, f"{where}[{i}]") for i, v in enumerate(value))
        faults.raise_any()
        return items
    return value
