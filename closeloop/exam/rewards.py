"""Rewards (奖励), the three-month deduction (扣除三个月奖励资金) and the city's assessment.

Pure rules; the board (``closeloop.exam.boards``) applies them to each examined grid.

- The assessment score of a grid in a month is the city's monthly assessment score
  (市里月度考核) where the grid has one and the zone says tiers follow the city
  (``[exam] tiers_on = "city"``, the default), else the grid's board score. The article: "参加市里
  月度考核的村、根据考核分数分档予以奖励，对于考核分数过低的村，将扣除三个月奖励资金，并启动问责".
- Tier: the best tier whose ``min_score`` the assessment score reaches; its reward in yuan.
- Below the floor: an assessment score below ``floor`` in month M earns nothing in M (the floor
  is at or below the lowest tier), opens an accountability case (问责), and withholds the reward
  the grid would earn in the next three months, M+1, M+2 and M+3 (across year ends). A withheld
  month still shows the tier reached; its reward is 0 and the withheld amount is shown with the
  month that caused it. When several low months cover a month, the latest is named.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from closeloop.months import add_months, month_index, parse_month

DEDUCTION_MONTHS = 3
TIERS_ON: tuple[str, ...] = ("city", "exam")


@dataclass(frozen=True)
class Tier:
    """A reward tier: reached by a score of at least ``min_score``; ``reward`` in yuan."""

    name_zh: str
    name_en: str
    min_score: Decimal
    reward: Decimal


DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("一档", "Tier 1", Decimal(90), Decimal(30000)),
    Tier("二档", "Tier 2", Decimal(80), Decimal(20000)),
    Tier("三档", "Tier 3", Decimal(70), Decimal(10000)),
)


@dataclass(frozen=True)
class Penalty:
    """A deduction active in a month: caused by ``source_month``, lasting to ``until``."""

    grid: str
    source_month: str
    until: str
    examined: bool  # whether the grid is on this month's board


@dataclass(frozen=True)
class Reward:
    """What a grid earns in a month, and why."""

    basis: str  # "city" | "exam": which score decided
    assessment: Decimal  # that score
    tier: Tier | None
    reward: Decimal  # paid out: the tier's reward, or 0 when withheld
    withheld: Decimal  # the tier's reward withheld by a deduction
    below_floor: bool  # this month: accountability starts, the next three months withheld
    source_month: str | None  # the low month whose deduction covers this month
    until: str | None  # the last month of that deduction


def tier_for(score: Decimal, tiers: Sequence[Tier]) -> Tier | None:
    """The best tier whose min_score the score reaches, or None."""
    return next((tier for tier in tiers if score >= tier.min_score), None)


def deduction_months(low_month: str) -> tuple[str, ...]:
    """The months whose reward a low score in ``low_month`` withholds: M+1, M+2, M+3."""
    return tuple(add_months(low_month, n) for n in range(1, DEDUCTION_MONTHS + 1))


def covering_low_month(month: str, low_months: Iterable[str]) -> str | None:
    """The latest low month whose deduction covers ``month``, or None."""
    here = month_index(month)
    covering = [
        low for low in low_months if 1 <= here - month_index(parse_month(low)) <= DEDUCTION_MONTHS
    ]
    return max(covering, key=month_index) if covering else None


def assessment_basis(tiers_on: str, city_score: Decimal | None) -> str:
    if tiers_on not in TIERS_ON:
        raise ValueError(f"tiers_on must be one of {', '.join(TIERS_ON)}, not {tiers_on!r}")
    return "city" if tiers_on == "city" and city_score is not None else "exam"


def decide_reward(
    month: str,
    board_score: Decimal,
    city_score: Decimal | None,
    *,
    tiers: Sequence[Tier],
    floor: Decimal,
    tiers_on: str,
    low_months: Iterable[str],
) -> Reward:
    """A grid's reward in ``month`` from its scores and its earlier low months."""
    basis = assessment_basis(tiers_on, city_score)
    assessment = city_score if basis == "city" and city_score is not None else board_score
    tier = tier_for(assessment, tiers)
    earned = tier.reward if tier is not None else Decimal(0)
    source = covering_low_month(month, low_months)
    return Reward(
        basis=basis,
        assessment=assessment,
        tier=tier,
        reward=Decimal(0) if source else earned,
        withheld=earned if source else Decimal(0),
        below_floor=assessment < floor,
        source_month=source,
        until=add_months(source, DEDUCTION_MONTHS) if source else None,
    )
