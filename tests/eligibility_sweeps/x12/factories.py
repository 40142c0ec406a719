"""Small hand-built X12 documents for focused tests."""

from __future__ import annotations

from eligibility_sweeps.x12.delimiters import DEFAULT, Delimiters

SUBSCRIBER_271 = [
    "ST*271*0001*005010X279A1",
    "BHT*0022*11*REQ1*20250301*1200",
    "HL*1**20*1",
    "NM1*PR*2*EXAMPLE HEALTH PLAN*****PI*99999",
    "HL*2*1*21*1",
    "NM1*1P*2*EXAMPLE CLINIC*****XX*1234567893",
    "HL*3*2*22*0",
    "TRN*2*TRACE9*9EXAMPLE01",
    "TRN*1*PAYERTRACE*9PAYER0001",
    "NM1*IL*1*DOE*JANE****MI*W999",
]


def interchange(
    body: list[str],
    *,
    delimiters: Delimiters = DEFAULT,
    separator: str = "\n",
    version: str = "00501",
    gs08: str = "005010X279A1",
    se_count: int | None = None,
) -> str:
    """An ISA/GS/.../GE/IEA around ``body`` (written with ``*``, ``^``, ``:``),
    then rewritten with ``delimiters``, segments joined by terminator + ``separator``."""
    isa = (
        f"ISA*00*          *00*          *ZZ*CLEARINGHOUSE  *ZZ*PROVIDERSUB    "
        f"*250301*1200*^*{version}*000000101*0*T*:"
    )
    count = se_count if se_count is not None else len(body) + 1
    segments = [
        isa,
        f"GS*HB*CLEARINGHOUSE*PROVIDERSUB*20250301*1200*101*X*{gs08}",
        *body,
        f"SE*{count}*0001",
        "GE*1*101",
        "IEA*1*000000101",
    ]
    table = str.maketrans(
        {"*": delimiters.element, "^": delimiters.repetition, ":": delimiters.component}
    )
    return "".join(s.translate(table) + delimiters.segment + separator for s in segments)


def response_271(*segments: str, **kwargs: object) -> str:
    return interchange([*SUBSCRIBER_271, *segments], **kwargs)  # type: ignore[arg-type]
