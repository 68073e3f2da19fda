"""Enumerations with their Chinese labels beside the English codes."""

from enum import StrEnum


class LabelledEnum(StrEnum):
    """A code whose Chinese label travels with it: ``ComplaintCategory.KICKBACK.label_zh``."""

    label_zh: str

    # Runs once per member, at class creation; lookups such as ComplaintCategory("kickback")
    # do not call it. The default only lets type checkers accept those lookups.
    def __new__(cls, code: str, label_zh: str = "") -> "LabelledEnum":
        if not label_zh:
            raise TypeError(f"{cls.__name__}.{code} needs a Chinese label")
        member = str.__new__(cls, code)
        member._value_ = code
        member.label_zh = label_zh
        return member
