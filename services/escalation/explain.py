"""Explain a staff member's or a company's conduct file: every rule that fired and why, and
whether a staff member may be promoted on a given day.

    python -m services.escalation.explain staff S1101
    python -m services.escalation.explain staff S1101 --promotion-on 2027-03-01
    python -m services.escalation.explain company YX-PHARMA-017 --json

Reads the conduct file escalation keeps, and applies the rule book to it now (or at --now).
"""

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pydantic import BaseModel

from schemas.decision import Decision, DecisionKind, SubjectKind
from services.common.documents import MongoDocuments
from services.common.store import connect, database
from services.escalation import wording
from services.escalation.conduct import ConductFile, decision_of
from services.escalation.rulebook import RuleBook
from services.escalation.rules import evaluate
from services.escalation.rules.staff import bar_on, promotion_bars
from services.escalation.settings import EscalationSettings
from services.escalation.store import EscalationStore, KeptFile
from services.escalation.wording import Words


@dataclass(frozen=True)
class PromotionAnswer:
    allowed: bool
    bar: Decision | None
    """The bar in force that day, naming its case and last day; None when allowed."""

    def explain(self, staff_id: str, day: date) -> Words:
        return wording.promotion_answer(staff_id, day, self.bar)


def may_promote(file: ConductFile, book: RuleBook, day: date, *, now: datetime) -> PromotionAnswer:
    """R-PROMO-2Y asked directly: may this staff member be promoted on ``day``?"""
    bar = bar_on(promotion_bars(file, book), day)
    if bar is None:
        return PromotionAnswer(allowed=True, bar=None)
    return PromotionAnswer(allowed=False, bar=decision_of(bar, file, book, now=now))


class Explanation(BaseModel):
    subject: str
    rules_version: str
    decisions: list[Decision]
    """What the rules decide on the file today."""
    published: list[Decision]
    """What escalation published on the file, corrections and withdrawals included."""
    promotion: dict[str, object] | None = None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.escalation.explain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", choices=[SubjectKind.STAFF, SubjectKind.COMPANY])
    parser.add_argument("subject_id")
    parser.add_argument("--promotion-on", type=date.fromisoformat, help="YYYY-MM-DD (staff)")
    parser.add_argument("--now", type=datetime.fromisoformat, help="judge as of this time")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


async def explain(
    arguments: argparse.Namespace, settings: EscalationSettings
) -> Explanation | None:
    book = RuleBook.from_file(settings.rules)
    now = arguments.now or datetime.now(UTC)
    mongo = connect(settings)
    try:
        blank = ConductFile(subject_kind=arguments.kind, subject_id=arguments.subject_id)
        files = EscalationStore(MongoDocuments(database(mongo, settings))).files
        loaded = await files.load(blank.key)
    finally:
        await mongo.close()
    if loaded.value is None and arguments.promotion_on is None:
        return None  # nothing known; a promotion question is still answered (allowed)
    stored = loaded.value or KeptFile(file=blank)
    explanation = Explanation(
        subject=blank.key,
        rules_version=book.version,
        decisions=evaluate(stored.file, book, now=now),
        published=sorted(stored.published, key=lambda d: (d.as_of, d.key)),
    )
    if arguments.promotion_on is not None:
        answer = may_promote(stored.file, book, arguments.promotion_on, now=now)
        zh, en = answer.explain(arguments.subject_id, arguments.promotion_on)
        explanation.promotion = {
            "day": arguments.promotion_on.isoformat(),
            "allowed": answer.allowed,
            "case_id": None if answer.bar is None else answer.bar.case_id,
            "bar_until": None if answer.bar is None else str(answer.bar.in_force_until),
            "explanation_zh": zh,
            "explanation_en": en,
        }
    return explanation


def _print_text(explanation: Explanation) -> None:
    print(f"{explanation.subject} — rule book {explanation.rules_version}")
    if not explanation.decisions:
        print("  no rule applies (没有适用的规则)")
    for decision in explanation.decisions:
        label = DecisionKind(decision.kind).label_zh
        print(
            f"\n  [{decision.rule_id}] {label} {decision.kind}  (as of {decision.as_of:%Y-%m-%d})"
        )
        print(f"    {decision.explanation_zh}")
        print(f"    {decision.explanation_en}")
        facts = ", ".join(f"{name}={value}" for name, value in decision.facts.items())
        print(f"    facts: {facts}")
    changed = [d for d in explanation.published if d.corrects or d.withdrawn]
    if changed:
        print("\n  corrections and withdrawals published (更正与撤销):")
        for decision in changed:
            print(f"    [{decision.rule_id}] {decision.explanation_zh}")
    if explanation.promotion is not None:
        print(f"\n  {explanation.promotion['explanation_zh']}")
        print(f"  {explanation.promotion['explanation_en']}")


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.promotion_on is not None and arguments.kind != SubjectKind.STAFF:
        print("--promotion-on is for staff", file=sys.stderr)
        return 2
    explanation = asyncio.run(explain(arguments, EscalationSettings()))
    if explanation is None:
        print(f"no conduct file for {arguments.kind} {arguments.subject_id}", file=sys.stderr)
        return 1
    if arguments.json:
        print(json.dumps(explanation.model_dump(mode="json"), ensure_ascii=False, indent=2))
    else:
        _print_text(explanation)
    return 0


if __name__ == "__main__":
    sys.exit(main())
