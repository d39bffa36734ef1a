"""Input rules shared by every command model (API.md "Input rules")."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, StringConstraints

_NAME_PUNCTUATION = frozenset(" -.'")


def _has_control(value: str) -> bool:
    return any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn"} for ch in value)


def _clean_name(value: str) -> str:
    value = unicodedata.normalize("NFC", value).strip()
    if not value:
        raise ValueError("must not be blank")
    if _has_control(value):
        raise ValueError("must not contain control characters")
    return value


def _person_name(value: str) -> str:
    value = _clean_name(value)
    # Letters (L*) and the combining marks many scripts need (M*: Devanagari vowels, Thai tones).
    letters_or_marks = all(
        unicodedata.category(ch)[0] in "LM" or ch in _NAME_PUNCTUATION for ch in value
    )
    if not letters_or_marks or unicodedata.category(value[0])[0] != "L":
        raise ValueError("may contain only letters, spaces, '-', '.' and \"'\"")
    return value


def _strip_notes(value: object) -> object:
    """Notes are free text: control characters and angle brackets are dropped, not refused."""
    if not isinstance(value, str):
        return value
    kept = "".join(
        ch
        for ch in unicodedata.normalize("NFC", value)
        if ch not in "<>" and (ch in " " or not _has_control(ch))
    )
    return kept.strip()


Name = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_clean_name)]
PersonName = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(_person_name)
]
Notes = Annotated[str, StringConstraints(max_length=500), BeforeValidator(_strip_notes)]


def _required_text(value: str) -> str:
    if not value:
        raise ValueError("must not be blank")
    return value


Reason = Annotated[
    str,
    StringConstraints(max_length=500),
    BeforeValidator(_strip_notes),
    AfterValidator(_required_text),
]
