"""wording.toml: every decision's sentences, checked when escalation starts."""

from pathlib import Path

import pytest

from services.common.datafile import DataFileError
from services.escalation.wording import Sentences

WORDING = Path(__file__).parents[2] / "services" / "escalation" / "wording.toml"


def test_the_wording_file_has_the_sentences_of_every_outcome_a_rule_returns() -> None:
    sentences = Sentences.from_file(WORDING)

    assert "凡诉必查" in sentences.decision["OverdueCase"].zh


def test_a_wording_file_without_an_outcome_or_with_one_no_rule_returns_is_refused() -> None:
    text = WORDING.read_text(encoding="utf-8").replace("[decision.CutoffLifted]", "[decision.X]")

    with pytest.raises(DataFileError, match="no sentences for CutoffLifted") as refused:
        Sentences.from_toml(text, source="wording.toml")
    assert "decision.X: no outcome is named X" in str(refused.value)


def test_a_sentence_naming_a_value_nobody_gives_is_refused_with_its_line() -> None:
    text = WORDING.read_text(encoding="utf-8").replace("{subject}于{o.day}", "{staff}于{o.day}", 1)

    with pytest.raises(
        DataFileError, match=r"wording.toml:\d+ decision.PromotionAllowed.zh: unknown"
    ):
        Sentences.from_toml(text, source="wording.toml")
