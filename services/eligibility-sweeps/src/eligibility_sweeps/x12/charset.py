"""What text an X12 5010 element may hold, and how a person's or organisation's name is
made to fit. One place for both, so that the intake desk refuses a name with the same
rule the 270 builder applies when the name is finally sent.

The messages never carry the value (it may be a patient's name), only the character or
limit at fault; callers put the element or field name in front.
"""

from __future__ import annotations

import unicodedata

from eligibility_sweeps.x12.delimiters import DEFAULT, Delimiters

__all__ = ["ALLOWED", "NM103_MAX_LENGTH", "NM104_MAX_LENGTH", "x12_name"]

# The 5010 extended character set (the basic set plus lower case and these specials).
ALLOWED = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    " !\"&'()*+,-./:;?=%~@[]_{}\\|<>^`#$"
)
# NM1 name elements by the 005010X279A1 guide: last or organisation name, first name.
NM103_MAX_LENGTH = 60
NM104_MAX_LENGTH = 35


def x12_name(value: str, *, max_len: int, delimiters: Delimiters = DEFAULT) -> str:
    """``value`` as a 270 name element carries it, or ``ValueError`` saying why not.

    Unicode NFKD with combining marks dropped, upper-cased, runs of spaces collapsed:
    "José Müller" is "JOSE MULLER" and "Straße" is "STRASSE". A transliteration is
    applied only when it is unambiguous (a base letter plus accents), so "Ø", "Ł" or a
    CJK name is refused, not guessed. Characters are taken one at a time so that a
    refusal names the character the user typed. Too long is refused, not truncated: a
    truncated name silently fails the payer's demographic match.
    """
    plain: list[str] = []
    for ch in value:
        letters = "".join(
            c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)
        ).upper()
        for c in letters:
            if c in delimiters.all():
                shown = repr(c) if c == ch else f"{c!r} (from {ch!r})"
                raise ValueError(f"contains the delimiter {shown}, which X12 cannot escape")
            if c not in ALLOWED:
                raise ValueError(
                    f"character {ch!r} (U+{ord(ch):04X}) is not in the X12 character set "
                    "and has no unambiguous transliteration"
                )
        plain.append(letters)
    # Only the space is white space here (a tab or line break was refused above).
    name = " ".join(part for part in "".join(plain).split(" ") if part)
    if not name:
        raise ValueError("is empty")
    if len(name) > max_len:
        raise ValueError(
            f"{len(name)} characters, the limit is {max_len}; names are refused, "
            "not truncated, so the payer's demographic match does not fail silently"
        )
    return name
