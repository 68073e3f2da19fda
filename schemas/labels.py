"""Enumerations with their Chinese labels beside the English codes."""

from enum import StrEnum


class LabelledEnum(StrEnum):
    """A code whose Chinese label travels with it: ``ComplaintCategory.KICKBACK.label_zh``."""

    label_zh: str

    def __new__(cls, code: str, label_zh: str) -> "LabelledEnum":
        member = str.__new__(cls, code)
        member._value_ = code
        member.label_zh = label_zh
        return member
