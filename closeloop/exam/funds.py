"""The fund ledger (资金台账): rewards earned, withheld and paid; project funds applied for,
approved and disbursed, earmarked (专款专用: every disbursement names its project).

Pure rules; the service stores and reads the rows.

- Amounts are yuan with at most two decimals, greater than 0.
- A month's reward may be paid up to what the board says the grid earned that month; a withheld
  reward is not earned, so it cannot be paid.
- A project is applied for with an amount; a decision approves an amount up to it (0 refuses).
  Disbursements name the project and never exceed, together, the amount approved.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from closeloop.tickets import Invalid


def parse_amount(text: str | Decimal | int, *, zero: bool = False) -> Decimal:
    """Yuan, at most two decimals, > 0 (>= 0 with ``zero``)."""
    try:
        amount = Decimal(str(text).strip())
    except InvalidOperation:
        raise Invalid("funds.not_number", text=text) from None
    if not amount.is_finite() or amount < 0 or (amount == 0 and not zero):
        raise Invalid("funds.not_positive", text=text)
    if amount != amount.quantize(Decimal("0.01")):
        raise Invalid("funds.decimals", text=text)
    return amount.quantize(Decimal("0.01"))


def check_reward_payment(earned: Decimal, paid: Decimal, amount: Decimal) -> None:
    if earned <= 0:
        raise Invalid("funds.nothing_earned")
    if paid + amount > earned:
        raise Invalid("funds.over_earned", amount=amount, earned=earned, paid=paid)


def check_decision(applied: Decimal, approved: Decimal, already: Decimal | None) -> None:
    if already is not None:
        raise Invalid("funds.decided")
    if approved > applied:
        raise Invalid("funds.over_applied", approved=approved, applied=applied)


def check_disbursement(approved: Decimal | None, disbursed: Decimal, amount: Decimal) -> None:
    if approved is None:
        raise Invalid("funds.not_approved")
    if approved == 0:
        raise Invalid("funds.refused")
    if disbursed + amount > approved:
        raise Invalid("funds.over_approved", amount=amount, approved=approved, disbursed=disbursed)


@dataclass(frozen=True)
class RewardLine:
    """A grid's reward in a month: earned, withheld (with the low month), paid."""

    grid: str
    name: str
    tier: str | None
    earned: Decimal
    withheld: Decimal
    withheld_by: str | None  # the low month whose deduction withholds it
    paid: Decimal

    @property
    def outstanding(self) -> Decimal:
        return self.earned - self.paid


@dataclass(frozen=True)
class ProjectLine:
    id: int
    grid: str
    name: str
    project: str
    purpose: str
    applied: Decimal
    approved: Decimal | None
    disbursed: Decimal

    @property
    def status(self) -> str:
        if self.approved is None:
            return "applied"
        return "refused" if self.approved == 0 else "approved"

    @property
    def remaining(self) -> Decimal:
        return (self.approved or Decimal(0)) - self.disbursed


@dataclass(frozen=True)
class Ledger:
    month: str
    rewards: tuple[RewardLine, ...]
    projects: tuple[ProjectLine, ...]

    @property
    def totals(self) -> dict[str, Decimal]:
        return {
            "earned": sum((r.earned for r in self.rewards), Decimal(0)),
            "withheld": sum((r.withheld for r in self.rewards), Decimal(0)),
            "paid": sum((r.paid for r in self.rewards), Decimal(0)),
            "applied": sum((p.applied for p in self.projects), Decimal(0)),
            "approved": sum((p.approved or Decimal(0) for p in self.projects), Decimal(0)),
            "disbursed": sum((p.disbursed for p in self.projects), Decimal(0)),
        }
