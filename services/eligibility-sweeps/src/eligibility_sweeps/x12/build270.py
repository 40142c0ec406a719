"""Build an X12 005010X279A1 270 eligibility inquiry, envelope included.

Pure code, no I/O: the caller owns the control numbers (they must be unique per trading
partner and persisted, which is a storage concern) and the clock.

Text safety. X12 has no escape or release character, so a value that contains a delimiter
cannot be sent as it is. Every element value passes one gate before it is emitted:

- Names (people, organisations) are normalised: Unicode NFKD, combining marks dropped,
  upper-cased, runs of white space collapsed. "José Müller" becomes "JOSE MULLER" and
  "Straße" becomes "STRASSE". Upper case is what payers match on and what the basic
  character set holds; a transliteration is applied only when it is unambiguous (a base
  letter plus accents), so "Ø", "Ł" or a CJK name is refused, not guessed. The rule
  lives in ``x12.charset.x12_name``, which the intake desk's validation uses as well.
- Identifiers (member id, NPI, payer code, trace number, ...) are never rewritten: an
  identifier that is changed is a different identifier.
- After that, every character must be in the 5010 extended character set and must not be
  one of the four delimiters in use; otherwise ``X12BuildError`` names the element and the
  character. The message never carries the value itself, because these errors end up in
  logs and a value may be a patient's name or member id.
- Lengths follow the implementation guide (NM103 60, NM104 35, NM105 25, NM109 80, TRN02
  50, ...). A value that is too long is refused rather than truncated: a truncated name
  silently fails the payer's demographic match and a truncated id asks about someone else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

from eligibility_sweeps.x12.charset import ALLOWED, NM103_MAX_LENGTH, NM104_MAX_LENGTH, x12_name
from eligibility_sweeps.x12.delimiters import DEFAULT, Delimiters

__all__ = [
    "Dependent",
    "Envelope",
    "Inquiry",
    "Payer",
    "PersonName",
    "Provider",
    "Subscriber",
    "X12BuildError",
    "build_270",
    "trace_originator_from_ein",
]

IMPLEMENTATION = "005010X279A1"

_CODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# Interchange id qualifiers allowed by 005010 for ISA05/ISA07.
_ID_QUALIFIERS = frozenset({"01", "14", "20", "27", "28", "29", "30", "33", "ZZ"})
_MAX_CONTROL_NUMBER = 999_999_999
_MAX_SERVICE_TYPES = 99  # the 2110C/D loop repeats at most 99 times


class X12BuildError(ValueError):
    """An input that cannot be put into a valid 270. The message names the element
    (``NM103 (subscriber last name)``) and the offending character or limit, never the
    value, so it is safe to log and to show to an operator."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """ISA/GS/ST identity of one interchange. Control numbers come from the caller's
    per-partner sequence; this module only formats and range-checks them."""

    sender_id: str
    receiver_id: str
    interchange_control_number: int
    group_control_number: int
    transaction_control_number: int
    timestamp: datetime
    """Aware; written in UTC to ISA09/10, GS04/05 and BHT04/05, so the result does not
    depend on the server's time zone (CORE's TimeStamp is UTC as well)."""
    usage_indicator: Literal["T", "P"]
    sender_qualifier: str = "ZZ"
    receiver_qualifier: str = "ZZ"
    application_sender_code: str | None = None
    """GS02; the ISA sender id when not set, which is what most partners expect."""
    application_receiver_code: str | None = None
    """GS03; the ISA receiver id when not set."""
    acknowledgment_requested: bool = False
    """ISA14. Real-time 270s normally ask for no TA1: the 271 (or a 999) is the answer."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonName:
    last: str
    first: str | None = None
    middle: str | None = None
    suffix: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Payer:
    """2100A: ``NM1*PR*2*<name>*****PI*<code>``; the code is the payer id the trading
    partner routes on."""

    code: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Provider:
    """2100B information receiver: the facility's or billing entity's NPI. A ``str`` name
    is an organisation (``NM102=2``), a ``PersonName`` an individual (``NM102=1``)."""

    npi: str
    name: str | PersonName


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscriber:
    member_id: str
    name: PersonName
    birth_date: date
    gender: Literal["F", "M"] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Dependent:
    """The patient when the patient is not the subscriber (2000D). Dependents have no
    member id of their own in a 270: the payer finds them under the subscriber."""

    name: PersonName
    birth_date: date
    gender: Literal["F", "M"] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Inquiry:
    """What one eligibility check asks about.

    ``trace_number`` (TRN02) must be unique per check: the 271 echoes it and the inbound
    path matches on it. ``trace_originator`` (TRN03) is exactly 10 characters, by the IG
    '1' + EIN, '3' + DUNS or '9' + a user-assigned id; see ``trace_originator_from_ein``.
    """

    payer: Payer
    provider: Provider
    subscriber: Subscriber
    service_date: date
    trace_number: str
    trace_originator: str
    dependent: Dependent | None = None
    service_types: tuple[str, ...] = ("30",)
    """One 2110 loop (``EQ*<code>``) per code. 5010 also allows one EQ with EQ01
    repeated, but a payer may answer only the first repeat, and pyx12 (the validator
    every 270 we emit must pass) does not read repeated EQ01, so that form is not built."""
    reference: str | None = None
    """BHT03; the trace number when not set."""


def trace_originator_from_ein(ein: str) -> str:
    """TRN03 for an organisation identified by its EIN: '1' followed by the 9 digits
    (005010X279A1, TRN03 note). Hyphens as in ``12-3456789`` are accepted."""
    digits = ein.replace("-", "")
    if len(digits) != 9 or not digits.isascii() or not digits.isdigit():
        raise X12BuildError("TRN03 (trace originator): an EIN has exactly 9 digits")
    return "1" + digits


@dataclass(slots=True)
class _Writer:
    """Collects segments. Values arrive checked by ``_ident``/``_name``; the delimiter
    test here is a last guard so that no code path can emit a delimiter inside a value."""

    delimiters: Delimiters
    segments: list[str] = field(default_factory=list)

    def add(self, tag: str, *elements: str) -> None:
        for position, value in enumerate(elements, start=1):
            if any(ch in value for ch in self.delimiters.all()):
                raise X12BuildError(f"{tag}{position:02d}: contains a delimiter")
        # Trailing empty elements are dropped, as the standard requires.
        items = [tag, *elements]
        while items and items[-1] == "":
            items.pop()
        self.segments.append(self.delimiters.element.join(items))


def _check_chars(label: str, value: str, delimiters: Delimiters) -> None:
    for ch in value:
        if ch in delimiters.all():
            raise X12BuildError(f"{label}: contains the delimiter {ch!r}, which X12 cannot escape")
        if ch not in ALLOWED:
            raise X12BuildError(
                f"{label}: character {ch!r} (U+{ord(ch):04X}) is not in the X12 character set"
            )


def _ident(
    label: str, value: str, delimiters: Delimiters, *, max_len: int, min_len: int = 1
) -> str:
    """An identifier, checked and emitted exactly as given."""
    _check_chars(label, value, delimiters)
    if value != value.strip():
        raise X12BuildError(f"{label}: has leading or trailing spaces")
    if not min_len <= len(value) <= max_len:
        raise X12BuildError(
            f"{label}: length {len(value)} is outside {min_len}..{max_len}"
            if min_len != max_len
            else f"{label}: must be exactly {max_len} characters, got {len(value)}"
        )
    return value


def _name(label: str, value: str, delimiters: Delimiters, *, max_len: int) -> str:
    """A name, transliterated and upper-cased (see ``x12_name``)."""
    try:
        return x12_name(value, max_len=max_len, delimiters=delimiters)
    except ValueError as error:
        raise X12BuildError(f"{label}: {error}") from None


def _opt_name(label: str, value: str | None, delimiters: Delimiters, *, max_len: int) -> str:
    if value is None or not value.strip():
        return ""
    return _name(label, value, delimiters, max_len=max_len)


def _d8(value: date) -> str:
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def _npi(value: str, delimiters: Delimiters) -> str:
    """NPI check: 10 digits with a Luhn check digit over the '80840' prefix (CMS).
    A mistyped NPI otherwise comes back as an AAA from the payer, far from its cause."""
    npi = _ident("NM109 (provider NPI)", value, delimiters, max_len=10, min_len=10)
    if not npi.isdigit():
        raise X12BuildError("NM109 (provider NPI): must be 10 digits")
    total = 0
    for i, ch in enumerate(reversed("80840" + npi)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    if total % 10:
        raise X12BuildError("NM109 (provider NPI): check digit is wrong")
    return npi


def _person_elements(
    who: str, name: PersonName, delimiters: Delimiters
) -> tuple[str, str, str, str]:
    """NM103, NM104, NM105 and NM107 (NM106, the prefix, is not used in a 270)."""
    return (
        _name(f"NM103 ({who} last name)", name.last, delimiters, max_len=NM103_MAX_LENGTH),
        _opt_name(f"NM104 ({who} first name)", name.first, delimiters, max_len=NM104_MAX_LENGTH),
        _opt_name(f"NM105 ({who} middle name)", name.middle, delimiters, max_len=25),
        _opt_name(f"NM107 ({who} name suffix)", name.suffix, delimiters, max_len=10),
    )


def _gender(who: str, value: str | None) -> str:
    if value is None:
        return ""
    if value not in ("F", "M"):
        raise X12BuildError(f"DMG03 ({who} gender): must be F, M or omitted")
    return value


def _control(label: str, value: int) -> int:
    if isinstance(value, bool) or not 1 <= value <= _MAX_CONTROL_NUMBER:
        raise X12BuildError(f"{label}: must be between 1 and {_MAX_CONTROL_NUMBER}")
    return value


def _check_delimiters(d: Delimiters) -> None:
    chars = (d.element, d.component, d.repetition, d.segment)
    if any(len(c) != 1 for c in chars) or len(set(chars)) != 4:
        raise X12BuildError("delimiters: must be four distinct single characters")
    if any(c.isalnum() or c == " " for c in chars):
        raise X12BuildError("delimiters: letters, digits and space cannot be delimiters")


def _service_types(codes: Iterable[str], delimiters: Delimiters) -> list[str]:
    result = []
    for code in codes:
        _ident("EQ01 (service type)", code, delimiters, max_len=2)
        if not set(code) <= _CODE_CHARS:
            raise X12BuildError("EQ01 (service type): a code is 1-2 upper-case letters or digits")
        result.append(code)
    if not result:
        raise X12BuildError("EQ01 (service type): at least one service type is required")
    if len(result) > _MAX_SERVICE_TYPES:
        raise X12BuildError(f"EQ01 (service type): at most {_MAX_SERVICE_TYPES} codes")
    if len(set(result)) != len(result):
        raise X12BuildError("EQ01 (service type): a code is listed twice")
    return result


def _isa(envelope: Envelope, d: Delimiters) -> str:
    """The fixed-width ISA: every element padded to its exact size, 106 characters with
    the terminator, which is how a reader finds the delimiters."""
    for label, qualifier in (
        ("ISA05 (sender qualifier)", envelope.sender_qualifier),
        ("ISA07 (receiver qualifier)", envelope.receiver_qualifier),
    ):
        if qualifier not in _ID_QUALIFIERS:
            raise X12BuildError(f"{label}: must be one of {', '.join(sorted(_ID_QUALIFIERS))}")
    sender = _ident("ISA06 (sender id)", envelope.sender_id, d, max_len=15)
    receiver = _ident("ISA08 (receiver id)", envelope.receiver_id, d, max_len=15)
    if envelope.usage_indicator not in ("T", "P"):
        raise X12BuildError("ISA15 (usage indicator): must be T or P")
    at = _utc(envelope.timestamp)
    control = _control("ISA13 (interchange control number)", envelope.interchange_control_number)
    return d.element.join(
        (
            "ISA",
            "00",
            " " * 10,
            "00",
            " " * 10,
            envelope.sender_qualifier,
            sender.ljust(15),
            envelope.receiver_qualifier,
            receiver.ljust(15),
            f"{at:%y%m%d}",
            f"{at:%H%M}",
            d.repetition,
            "00501",
            f"{control:09d}",
            "1" if envelope.acknowledgment_requested else "0",
            envelope.usage_indicator,
            d.component,
        )
    )


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise X12BuildError("timestamp: must be timezone-aware")
    return value.astimezone(UTC)


def build_270(
    envelope: Envelope,
    inquiry: Inquiry,
    *,
    delimiters: Delimiters = DEFAULT,
    newline: bool = True,
) -> str:
    """The complete interchange (ISA ... IEA) holding one 270 transaction.

    ``newline`` puts a line break after each segment terminator, for people reading the
    stored exchange; receivers ignore it. Raises ``X12BuildError`` for any input that
    cannot be sent as it is; the output is a pure function of the inputs.
    """
    d = delimiters
    _check_delimiters(d)
    isa = _isa(envelope, d)
    at = _utc(envelope.timestamp)
    group = _control("GS06 (group control number)", envelope.group_control_number)
    transaction = _control(
        "ST02 (transaction set control number)", envelope.transaction_control_number
    )
    st02 = f"{transaction:04d}"
    gs02 = _ident(
        "GS02 (application sender code)",
        envelope.application_sender_code or envelope.sender_id,
        d,
        min_len=2,
        max_len=15,
    )
    gs03 = _ident(
        "GS03 (application receiver code)",
        envelope.application_receiver_code or envelope.receiver_id,
        d,
        min_len=2,
        max_len=15,
    )

    body = _Writer(d)
    body.add("ST", "270", st02, IMPLEMENTATION)
    _trace(inquiry, d)  # checked first: BHT03 defaults to the trace number
    reference = inquiry.reference if inquiry.reference is not None else inquiry.trace_number
    body.add(
        "BHT",
        "0022",
        "13",
        _ident("BHT03 (reference)", reference, d, max_len=50),
        f"{at:%Y%m%d}",
        f"{at:%H%M}",
    )
    _transaction_body(body, inquiry, d)
    body.add("SE", str(len(body.segments) + 1), st02)

    segments = [
        isa,
        d.element.join(
            ("GS", "HS", gs02, gs03, f"{at:%Y%m%d}", f"{at:%H%M}", str(group), "X", IMPLEMENTATION)
        ),
        *body.segments,
        d.element.join(("GE", "1", str(group))),
        d.element.join(("IEA", "1", f"{envelope.interchange_control_number:09d}")),
    ]
    terminator = d.segment + ("\n" if newline else "")
    return terminator.join(segments) + terminator


def _transaction_body(w: _Writer, inquiry: Inquiry, d: Delimiters) -> None:
    """HL 20 payer, 21 provider, 22 subscriber, and 23 dependent when the patient is not
    the subscriber. TRN, DTP*291 and the EQs go on the patient's level only."""
    payer = inquiry.payer
    w.add("HL", "1", "", "20", "1")
    w.add(
        "NM1",
        "PR",
        "2",
        _name("NM103 (payer name)", payer.name, d, max_len=NM103_MAX_LENGTH),
        "",
        "",
        "",
        "",
        "PI",
        _ident("NM109 (payer code)", payer.code, d, max_len=80, min_len=2),
    )

    provider = inquiry.provider
    npi = _npi(provider.npi, d)
    w.add("HL", "2", "1", "21", "1")
    if isinstance(provider.name, PersonName):
        last, first, middle, suffix = _person_elements("provider", provider.name, d)
        w.add("NM1", "1P", "1", last, first, middle, "", suffix, "XX", npi)
    else:
        org = _name(
            "NM103 (provider organisation name)", provider.name, d, max_len=NM103_MAX_LENGTH
        )
        w.add("NM1", "1P", "2", org, "", "", "", "", "XX", npi)

    trace = _trace(inquiry, d)
    service_date = ("DTP", "291", "D8", _d8(inquiry.service_date))
    service_types = _service_types(inquiry.service_types, d)

    subscriber = inquiry.subscriber
    dependent = inquiry.dependent
    w.add("HL", "3", "2", "22", "1" if dependent else "0")
    if dependent is None:
        w.add(*trace)
    last, first, middle, suffix = _person_elements("subscriber", subscriber.name, d)
    member_id = _ident(
        "NM109 (subscriber member id)", subscriber.member_id, d, max_len=80, min_len=2
    )
    w.add("NM1", "IL", "1", last, first, middle, "", suffix, "MI", member_id)
    w.add("DMG", "D8", _d8(subscriber.birth_date), _gender("subscriber", subscriber.gender))
    if dependent is None:
        w.add(*service_date)
        _inquiries(w, service_types)
        return

    w.add("HL", "4", "3", "23", "0")
    w.add(*trace)
    last, first, middle, suffix = _person_elements("dependent", dependent.name, d)
    w.add("NM1", "03", "1", last, first, middle, "", suffix)
    w.add("DMG", "D8", _d8(dependent.birth_date), _gender("dependent", dependent.gender))
    w.add(*service_date)
    _inquiries(w, service_types)


def _trace(inquiry: Inquiry, d: Delimiters) -> tuple[str, ...]:
    return (
        "TRN",
        "1",
        _ident("TRN02 (trace number)", inquiry.trace_number, d, max_len=50),
        _ident("TRN03 (trace originator)", inquiry.trace_originator, d, min_len=10, max_len=10),
    )


def _inquiries(w: _Writer, codes: list[str]) -> None:
    for code in codes:
        w.add("EQ", code)
