"""The order document an authority issues: its parts, their validation and their JSON.

An order is a production order (UN Convention against Cybercrime Art 27, Budapest Art 18,
the EU's EPOC), a preservation order (UN Art 25, Budapest Art 16, the EU's EPOC-PR) or an
expedited partial disclosure of traffic data (UN Art 26, Budapest Art 17). Its document checks
itself when built, naming the field at fault.
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

from custody.errors import BadRequest
from custody.events import format_time
from custody.order_deadlines import (
    DEFAULT_PRESERVATION_DAYS,
    EU_PRESERVATION_DAYS,
    MAX_PRESERVATION_DAYS,
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

MAX_TEXT = 20_000
MAX_LINE = 1_000
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
ORDER_ID_PATTERN = re.compile(r"^ord_[0-9a-f]{16}$")
_SURROGATE = re.compile("[\ud800-\udfff]")
HEX32 = re.compile(r"^[0-9a-f]{64}$")
_T = TypeVar("_T")


def check_text(value: object, where: str, limit: int = MAX_TEXT) -> None:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{where} is required, as non-empty text")
    if len(value) > limit:
        raise BadRequest(f"{where} is longer than {limit} characters")
    if _SURROGATE.search(value):
        raise BadRequest(f"{where} holds a lone surrogate, which is not text")


def check_choice(value: object, choices: Sequence[str], where: str) -> None:
    if not isinstance(value, str) or value not in choices:
        raise BadRequest(f"{where} is one of {', '.join(choices)}, not {value!r}")


def check_utc(value: object, where: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise BadRequest(f"{where} must be a timezone-aware date and time")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 is a valid RFC 3339 time that falls before year 1 in UTC.
        raise BadRequest(f"{where} is outside the years 1 to 9999 in UTC") from None


def set_utc(obj: object, name: str, where: str) -> None:
    if getattr(obj, name) is not None:
        object.__setattr__(obj, name, check_utc(getattr(obj, name), where))


@dataclass(frozen=True)
class LegalBasis:
    """The provision the order rests on: one of ``LEGAL_BASES``, and its full citation."""

    _LABEL: ClassVar[str] = "legal_basis"
    instrument: str
    citation: str

    def __post_init__(self) -> None:
        check_choice(self.instrument, tuple(LEGAL_BASES), "legal_basis.instrument")
        check_text(self.citation, "legal_basis.citation", MAX_LINE)


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
        check_text(self.name, "authority.name", MAX_LINE)
        check_choice(self.type, AUTHORITY_TYPES, "authority.type")
        check_text(self.file_number, "authority.file_number", MAX_LINE)
        check_text(self.contact, "authority.contact", MAX_LINE)
        if self.state is not None and not _COUNTRY.match(str(self.state)):
            raise BadRequest(
                f"authority.state is an ISO 3166-1 alpha-2 code such as PT, not {self.state!r}"
            )


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
        check_text(self.description, "offence.description")
        check_text(self.provision, "offence.provision", MAX_LINE)
        years = self.max_penalty_years
        if years is not None and (type(years) is not int or not 0 <= years <= 100):
            raise BadRequest(f"offence.max_penalty_years is from 0 to 100, not {years!r}")
        if self.listed_category is not None:
            check_choice(self.listed_category, tuple(LISTED_OFFENCES), "offence.listed_category")
        if self.annex_iv_category is not None:
            check_text(self.annex_iv_category, "offence.annex_iv_category", MAX_LINE)


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
        check_choice(self.type, TARGET_TYPES, "target.type")
        check_text(self.value, "target.value", MAX_LINE)
        if self.type != "ip":
            for name in ("port", "time"):
                if getattr(self, name) is not None:
                    raise BadRequest(f"target.{name} is for an ip target only")
            return
        try:
            ipaddress.ip_address(self.value)
        except ValueError:
            raise BadRequest(f"target.value {self.value!r} is not an IP address") from None
        if self.time is None:
            raise BadRequest("target.time is required for an ip target")
        set_utc(self, "time", "target.time")
        port = self.port
        if port is not None and (type(port) is not int or not 0 <= port <= 0xFFFF):
            raise BadRequest(f"target.port is a port number from 0 to 65535, not {port!r}")


@dataclass(frozen=True)
class TimeRange:
    _LABEL: ClassVar[str] = "time_range"
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        set_utc(self, "start", "time_range.start")
        set_utc(self, "end", "time_range.end")
        if self.start is None or self.end is None:
            raise BadRequest("time_range.start and time_range.end are both required")
        if self.end <= self.start:
            raise BadRequest("time_range.end must be after time_range.start")


@dataclass(frozen=True)
class Emergency:
    """An imminent threat that shortens the time to produce to 8 hours."""

    _LABEL: ClassVar[str] = "emergency"
    flag: bool = False
    category: str | None = None
    justification: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.flag, bool):
            raise BadRequest("emergency.flag is true or false")
        if self.flag:
            check_choice(self.category, EMERGENCY_CATEGORIES, "emergency.category")
            check_text(self.justification, "emergency.justification")
        elif self.category is not None or self.justification is not None:
            raise BadRequest("emergency.category and emergency.justification need emergency.flag")


@dataclass(frozen=True)
class Confidentiality:
    """Whether the provider must not tell the user, and until when."""

    _LABEL: ClassVar[str] = "confidentiality"
    no_user_notice: bool = False
    until: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.no_user_notice, bool):
            raise BadRequest("confidentiality.no_user_notice is true or false")
        if self.until is not None and not self.no_user_notice:
            raise BadRequest("confidentiality.until needs confidentiality.no_user_notice")
        set_utc(self, "until", "confidentiality.until")


@dataclass(frozen=True)
class OrderDocument:
    """What the authority orders: the fields of the EU's EPOC / EPOC-PR forms, for any basis.

    ``link`` is the link between the data and the offence. ``preservation_days`` is the hold of
    a preservation order (90 unless set) and absent from any other kind.
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

    def __post_init__(self) -> None:
        for name in ("reference", "case", "provider", "return_channel"):
            check_text(getattr(self, name), name, MAX_LINE)
        for name in ("facts", "link", "necessity_and_proportionality"):
            check_text(getattr(self, name), name)
        check_choice(self.kind, KINDS, "kind")
        for name, cls in _PARTS.items():
            value = getattr(self, name)
            if not isinstance(value, cls) and (value is not None or name not in _OPTIONAL):
                raise BadRequest(f"{name} is required, as a {cls.__name__} object")
        if self.linked_order is not None:
            check_text(self.linked_order, "linked_order", MAX_LINE)
        if not isinstance(self.language, str) or not _LANGUAGE.match(self.language):
            raise BadRequest(
                f"language is a BCP 47 tag such as 'en' or 'pt-BR', not {self.language!r}"
            )
        self._check_targets()
        self._check_categories()
        self._check_preservation_days()
        self._check_competence()

    def _check_targets(self) -> None:
        if not isinstance(self.targets, tuple | list) or not self.targets:
            raise BadRequest("targets: an order names at least one target")
        object.__setattr__(self, "targets", tuple(self.targets))
        for i, target in enumerate(self.targets):
            if not isinstance(target, Target):
                raise BadRequest(f"targets[{i}] is not a target")

    def _check_categories(self) -> None:
        given = self.data_categories
        if not isinstance(given, tuple | list) or not given:
            raise BadRequest(f"data_categories: a {self.kind} order names the data it concerns")
        for category in given:
            check_choice(category, DATA_CATEGORIES, "data_categories")
        if len(set(given)) != len(given):
            raise BadRequest("data_categories names a category twice")
        categories = tuple(c for c in DATA_CATEGORIES if c in given)
        object.__setattr__(self, "data_categories", categories)
        if self.kind == PARTIAL_TRAFFIC_DISCLOSURE and categories != ("traffic",):
            raise BadRequest("data_categories of a partial traffic disclosure is traffic only")
        basis = self.legal_basis.instrument
        if self.kind not in LEGAL_BASES[basis]:
            raise BadRequest(f"legal_basis.instrument {basis} does not found a {self.kind} order")
        reach = _BASIS_CATEGORIES.get(basis, DATA_CATEGORIES)
        if not set(categories) <= set(reach):
            raise BadRequest(f"data_categories under {basis} are {', '.join(reach)} only")

    def _check_preservation_days(self) -> None:
        days = self.preservation_days
        if self.kind != PRESERVATION:
            if days is not None:
                raise BadRequest("preservation_days is for a preservation order only")
            return
        if self.legal_basis.instrument.startswith("eu_"):
            # Regulation (EU) 2023/1543 Art 11(1): an EPOC-PR holds for 60 days.
            if days not in (None, EU_PRESERVATION_DAYS):
                raise BadRequest(
                    f"preservation_days of an EU preservation order is {EU_PRESERVATION_DAYS} "
                    "(Regulation (EU) 2023/1543 Art 11(1))"
                )
            object.__setattr__(self, "preservation_days", EU_PRESERVATION_DAYS)
        elif days is None:
            object.__setattr__(self, "preservation_days", DEFAULT_PRESERVATION_DAYS)
        elif type(days) is not int or not 1 <= days <= MAX_PRESERVATION_DAYS:
            raise BadRequest(
                f"preservation_days is from 1 to {MAX_PRESERVATION_DAYS}, not {days!r}"
            )

    def needs_threshold(self) -> bool:
        """Regulation (EU) 2023/1543 Art 5(4): an EU order to produce traffic data (other
        than data requested only to identify the user) or content."""
        return (
            self.legal_basis.instrument.startswith("eu_")
            and self.kind == PRODUCTION
            and not {"traffic", "content"}.isdisjoint(self.data_categories)
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

    def _check_competence(self) -> None:
        """Regulation (EU) 2023/1543 Art 4: a prosecutor may issue an EU order except one
        producing traffic or content data, which needs a judge or court; anyone else's order
        must be validated by one who may issue it."""
        if not self.legal_basis.instrument.startswith("eu_"):
            return
        if self.issuing_authority.state is None:
            raise BadRequest(
                "issuing_authority.state is required: an EU order names its issuing State "
                "(Regulation (EU) 2023/1543, Art 8 and Annex I)"
            )
        intrusive = self.kind == PRODUCTION and not {"traffic", "content"}.isdisjoint(
            self.data_categories
        )
        competent = ("judge", "court") if intrusive else ("judge", "court", "prosecutor")
        validator = self.validating_authority
        if self.issuing_authority.type in competent or (validator and validator.type in competent):
            return
        raise BadRequest(
            f"validating_authority is required: an EU order from a {self.issuing_authority.type} "
            f"must be validated by a {' or '.join(competent)} (Regulation (EU) 2023/1543, Art 4)"
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
        """Build a document from its JSON form; BadRequest names the first faulty field."""
        return _from_json(cls, data, "")


_PARTS: Mapping[str, type] = {
    "legal_basis": LegalBasis,
    "issuing_authority": Authority,
    "validating_authority": Authority,
    "offence": Offence,
    "time_range": TimeRange,
    "emergency": Emergency,
    "confidentiality": Confidentiality,
}
_OPTIONAL = ("validating_authority", "time_range")


# Fields added after orders were first issued: left out of the JSON while absent, so that a
# document issued before keeps the very text its signed note carries.
_LATER_FIELDS = frozenset({"state", "max_penalty_years", "listed_category", "annex_iv_category"})


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
    """A document part from JSON, by its type hints; errors name the field's full path."""
    if not isinstance(data, Mapping):
        raise BadRequest(f"{where or 'the order document'} must be a JSON object")
    known, hints = _shape(typing.cast(Any, cls))
    for name in data:
        if name not in known:
            raise BadRequest(f"{_at(where, str(name))} is not a field of an order document")
    values: dict[str, Any] = {}
    for name, spec in known.items():
        if name in data:
            values[name] = _value_from_json(hints[name], data[name], _at(where, name))
        elif spec.default is MISSING and spec.default_factory is MISSING:
            raise BadRequest(f"{_at(where, name)} is required")
    try:
        return cls(**values)
    except BadRequest as exc:
        label: str = getattr(cls, "_LABEL", "")
        message = str(exc)
        if label and message.startswith(label):
            message = where + message[len(label) :]
        raise BadRequest(message) from None


def _value_from_json(hint: Any, value: Any, where: str) -> Any:
    if value is None:
        return None
    if isinstance(hint, UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if hint is datetime:
        try:
            return datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise BadRequest(f"{where} must be an RFC 3339 date and time") from None
    if isinstance(hint, type) and is_dataclass(hint):
        return _from_json(hint, value, where)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list):
            raise BadRequest(f"{where} must be a list")
        item = typing.get_args(hint)[0]
        return tuple(_value_from_json(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    return value
