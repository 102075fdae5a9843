"""The month's board (月考红黄榜): each examined grid's score, its rank, the red and yellow boards,
with the rewards and deductions of ``closeloop.exam.rewards``.

Rules decided here (the board shows their results to people who will ask why):

- Board score: the exam total alone by default (``[exam] weights = { exam = 1.0 }``), as the
  article says ("所得分数作为红黄榜评定的依据"). A zone may mix in the month's ticket rates:
  ``weights["exam"] * exam + weights["on_time_rate"] * on_time * 100 + weights["closure_rate"]
  * closure * 100``; a weight left out is 0. A rate is ``None`` when the grid had no ticket due;
  its weight is then left out and the remaining weights are scaled back to a sum of 1. The rates
  are shown beside the score in any case. The score is rounded half up to 2 places; tiers and the
  floor compare against that published figure.
- Ranking: score descending, then exam descending, then grid code ascending; ranks are 1..n.
- Boards: the red board (红榜) takes up to ``red_size`` of the best grids, only grids at or above
  the floor whose assessment is not below it, and only from the better half (ranks up to n // 2);
  the yellow board (黄榜) is the bottom ``yellow_size``, at most half of the grids (n // 2). So no
  grid is on both, a grid below the floor is never on the red board, and with an odd count the
  middle grid is on neither.
- Rewards, the deduction of M+1..M+3 and the city score: ``closeloop.exam.rewards``. Earlier
  months' low scores come from ``history`` (the three months before M are consulted).
  Deductions of grids not examined in M are listed too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from types import MappingProxyType
from typing import Any

from closeloop.errors import CodedError, english
from closeloop.exam.rewards import (
    DEDUCTION_MONTHS,
    DEFAULT_TIERS,
    TIERS_ON,
    Penalty,
    Tier,
    covering_low_month,
    decide_reward,
)
from closeloop.exam.scoring import ExamScore, round_half_up
from closeloop.months import add_months, month_index, parse_month

INDICATORS: tuple[str, ...] = ("on_time_rate", "closure_rate")
WEIGHT_KEYS: tuple[str, ...] = ("exam", *INDICATORS)


class ScoringConfigError(CodedError, ValueError):
    """The scoring section of the configuration is not usable: every code names the `key`."""

    def keyed(self, key: str) -> ScoringConfigError:
        """The same problem with its key named from another place (the key within the section
        once the section is known, or without the section's name where the section is said)."""
        self.params["key"] = key
        self.args = (english(self.code, self.params),)
        return self


DEFAULT_WEIGHTS: Mapping[str, Decimal] = MappingProxyType(
    {"exam": Decimal(1), "on_time_rate": Decimal(0), "closure_rate": Decimal(0)}
)
_CONFIG_KEYS = ("weights", "tiers", "floor", "red_size", "yellow_size", "tiers_on")
_TIER_KEYS = ("name_zh", "name_en", "min_score", "reward")


@dataclass(frozen=True)
class ScoringConfig:
    """How the month's score, tiers, penalty floor and board sizes are decided."""

    weights: Mapping[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    tiers: tuple[Tier, ...] = DEFAULT_TIERS
    floor: Decimal = Decimal(60)
    red_size: int = 5
    yellow_size: int = 5
    tiers_on: str = "city"  # tiers and the floor: the city's score where a grid has one

    def __post_init__(self) -> None:
        weights = {key: self.weights.get(key, Decimal(0)) for key in WEIGHT_KEYS}
        weights.update({k: v for k, v in self.weights.items() if k not in weights})
        object.__setattr__(self, "weights", weights)
        _check_weights(self.weights)
        if self.tiers_on not in TIERS_ON:
            raise ScoringConfigError(
                "scoring.one_of", key="tiers_on", choices=", ".join(TIERS_ON), value=self.tiers_on
            )
        _check_tiers(self.tiers, self.floor)
        for name in ("red_size", "yellow_size"):
            size = getattr(self, name)
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise ScoringConfigError("scoring.whole", key=name, value=size)
        object.__setattr__(self, "weights", MappingProxyType(dict(self.weights)))
        object.__setattr__(self, "tiers", tuple(self.tiers))

    @classmethod
    def from_config(cls, section: Mapping[str, Any], *, where: str = "exam") -> ScoringConfig:
        """Build from a config section (e.g. ``[exam]`` of config.toml); missing keys default.

        ``weights`` is a table of the three weights; ``tiers`` an array of tables with
        ``name_zh``, ``name_en``, ``min_score``, ``reward`` (or 4-item arrays in that order).
        """
        if not isinstance(section, Mapping):
            raise ScoringConfigError("scoring.not_table", key=where, kind=type(section).__name__)
        unknown = sorted(set(section) - set(_CONFIG_KEYS))
        if unknown:
            raise ScoringConfigError(
                "scoring.unknown_keys",
                key=where,
                unknown=", ".join(unknown),
                known=", ".join(_CONFIG_KEYS),
            )
        kwargs: dict[str, Any] = {}
        try:
            if "weights" in section:
                kwargs["weights"] = _read_weights(section["weights"], f"{where}.weights")
            if "tiers" in section:
                kwargs["tiers"] = _read_tiers(section["tiers"], f"{where}.tiers")
            if "floor" in section:
                kwargs["floor"] = _to_decimal(section["floor"], f"{where}.floor")
            for name in ("red_size", "yellow_size", "tiers_on"):
                if name in section:
                    kwargs[name] = section[name]
            return cls(**kwargs)
        except ScoringConfigError as exc:
            key = str(exc.params["key"])
            raise (exc if key.startswith(where) else exc.keyed(f"{where}.{key}")) from None


def _to_decimal(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ScoringConfigError("scoring.number", key=where, value=value)
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        number = Decimal(text)
    except ArithmeticError:
        raise ScoringConfigError("scoring.number", key=where, value=value) from None
    if not number.is_finite():
        raise ScoringConfigError("scoring.finite", key=where, value=value)
    return number


def _read_weights(value: object, where: str) -> dict[str, Decimal]:
    if not isinstance(value, Mapping):
        raise ScoringConfigError("scoring.weights_table", key=where, known=", ".join(WEIGHT_KEYS))
    return {str(key): _to_decimal(weight, f"{where}.{key}") for key, weight in value.items()}


def _read_tiers(value: object, where: str) -> tuple[Tier, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ScoringConfigError("scoring.tiers_array", key=where)
    tiers = []
    for i, entry in enumerate(value):
        at = f"{where}[{i}]"
        if isinstance(entry, Mapping):
            missing = [k for k in _TIER_KEYS if k not in entry]
            extra = sorted(set(entry) - set(_TIER_KEYS))
            if missing or extra:
                said = [ScoringConfigError("scoring.tier_missing", key=at, keys=", ".join(missing))]
                said = said if missing else []
                if extra:
                    said.append(
                        ScoringConfigError("scoring.tier_unknown", key=at, keys=", ".join(extra))
                    )
                raise ScoringConfigError(
                    "scoring.tier_keys", key=at, known=", ".join(_TIER_KEYS), said=said
                )
            fields = [entry[k] for k in _TIER_KEYS]
        elif isinstance(entry, Sequence) and not isinstance(entry, str) and len(entry) == 4:
            fields = list(entry)
        else:
            raise ScoringConfigError("scoring.tier_shape", key=at)
        name_zh, name_en, min_score, reward = fields
        for key, name in (("name_zh", name_zh), ("name_en", name_en)):
            if not isinstance(name, str) or not name.strip():
                raise ScoringConfigError("scoring.nonempty", key=f"{at}.{key}")
        tiers.append(
            Tier(
                name_zh=name_zh.strip(),
                name_en=name_en.strip(),
                min_score=_to_decimal(min_score, f"{at}.min_score"),
                reward=_to_decimal(reward, f"{at}.reward"),
            )
        )
    return tuple(tiers)


def _check_weights(weights: Mapping[str, Decimal]) -> None:
    keys = set(weights)
    unknown = sorted(keys - set(WEIGHT_KEYS))
    if unknown:
        raise ScoringConfigError(
            "scoring.weights_unknown",
            key="weights",
            unknown=", ".join(unknown),
            known=", ".join(WEIGHT_KEYS),
        )
    for key in WEIGHT_KEYS:
        weight = weights[key]
        if not isinstance(weight, Decimal) or not weight.is_finite() or weight < 0:
            raise ScoringConfigError("scoring.weight_negative", key=f"weights.{key}", value=weight)
    # Indicator weights drop out when a grid has no due tickets; the exam weight never does,
    # so it alone keeps the rescaled sum away from zero.
    if weights["exam"] <= 0:
        raise ScoringConfigError("scoring.exam_weight", key="weights.exam")
    total = sum(weights.values(), Decimal(0))
    if abs(total - 1) > Decimal("1e-9"):
        raise ScoringConfigError("scoring.weights_sum", key="weights", total=total)


def _check_tiers(tiers: Sequence[Tier], floor: Decimal) -> None:
    if not isinstance(floor, Decimal) or not floor.is_finite() or floor < 0:
        raise ScoringConfigError("scoring.floor_negative", key="floor", value=floor)
    if not tiers:
        raise ScoringConfigError("scoring.no_tier", key="tiers")
    for i, tier in enumerate(tiers):
        if not isinstance(tier, Tier):
            raise ScoringConfigError("scoring.not_tier", key=f"tiers[{i}]", value=tier)
        if not 0 <= tier.min_score <= 100:
            raise ScoringConfigError("scoring.min_score", key=f"tiers[{i}].min_score")
        if tier.reward < 0:
            raise ScoringConfigError("scoring.reward_negative", key=f"tiers[{i}].reward")
    for i in range(1, len(tiers)):
        upper, lower = tiers[i - 1], tiers[i]
        if not lower.min_score < upper.min_score:
            raise ScoringConfigError(
                "scoring.tiers_descend",
                key="tiers",
                i=i,
                name=lower.name_en,
                score=lower.min_score,
                above=upper.min_score,
            )
        if lower.reward > upper.reward:
            raise ScoringConfigError(
                "scoring.reward_order",
                key=f"tiers[{i}].reward",
                reward=lower.reward,
                better=upper.reward,
            )
    if floor > tiers[-1].min_score:
        raise ScoringConfigError(
            "scoring.floor_above", key="floor", floor=floor, lowest=tiers[-1].min_score
        )


# --------------------------------------------------------------------------- the month's board


@dataclass(frozen=True)
class GridIndicators:
    """A grid's ticket indicators for the month, as fractions 0..1 (None: no ticket due)."""

    on_time_rate: float | Decimal | None = None
    closure_rate: float | Decimal | None = None


@dataclass(frozen=True)
class GridResult:
    """A grid's line on a month's board; also what is stored as its history for that month."""

    month: str
    grid: str
    rank: int
    score: Decimal  # the board score
    exam: Decimal
    on_time_rate: float | Decimal | None
    closure_rate: float | Decimal | None
    tier_zh: str | None
    tier_en: str | None
    reward: Decimal  # earned: the tier's reward, or 0 when withheld
    reward_lost: Decimal  # the tier's reward withheld by a deduction
    below_floor: bool  # assessed below the floor this month: accountability (问责) starts
    penalised: bool  # this month's reward is withheld (a low month among the three before)
    penalty_source_month: str | None
    penalty_until: str | None
    red: bool
    yellow: bool
    city_score: Decimal | None = None
    basis: str = "exam"  # which score decided the tier and the floor: "city" or "exam"

    @property
    def accountability(self) -> bool:
        """问责 is started in the month of the low score only."""
        return self.below_floor

    @property
    def assessment(self) -> Decimal:
        """The score the tier and the floor were decided on."""
        return self.city_score if self.basis == "city" and self.city_score else self.score


PastResult = GridResult


@dataclass(frozen=True)
class Board:
    """A month's ranked results, its red and yellow boards and its active deductions."""

    month: str
    rows: tuple[GridResult, ...]
    penalties: tuple[Penalty, ...]

    @property
    def red(self) -> tuple[GridResult, ...]:
        """The red board (红榜), best first."""
        return tuple(row for row in self.rows if row.red)

    @property
    def yellow(self) -> tuple[GridResult, ...]:
        """The yellow board (黄榜), in rank order (the worst grid last)."""
        return tuple(row for row in self.rows if row.yellow)

    @property
    def accountability(self) -> tuple[GridResult, ...]:
        """Grids for which an accountability procedure (问责) starts this month."""
        return tuple(row for row in self.rows if row.below_floor)

    @property
    def results(self) -> tuple[GridResult, ...]:
        """What to store as this month's history."""
        return self.rows


def month_score(
    exam: Decimal, indicators: GridIndicators, weights: Mapping[str, Decimal]
) -> Decimal:
    """The board score on 0..100 from the exam total and (when weighted) the ticket rates."""
    parts = [(Fraction(weights["exam"]), Fraction(exam))]
    for name in INDICATORS:
        rate = getattr(indicators, name)
        if rate is not None and weights.get(name):
            parts.append((Fraction(weights[name]), _fraction(rate) * 100))
    weight_sum = sum((w for w, _ in parts), Fraction(0))
    return round_half_up(sum((w * v for w, v in parts), Fraction(0)) / weight_sum)


def low_months_of(history: Iterable[GridResult], month: str) -> dict[str, list[str]]:
    """Per grid, its low months among the three before ``month``."""
    here = month_index(month)
    low: dict[str, list[str]] = {}
    for past in history:
        if (
            past.below_floor
            and 1 <= here - month_index(parse_month(past.month)) <= DEDUCTION_MONTHS
        ):
            low.setdefault(past.grid, []).append(past.month)
    return low


def month_board(
    month: str,
    exam: Mapping[str, ExamScore],
    indicators: Mapping[str, GridIndicators | Mapping[str, float | Decimal | None]],
    config: ScoringConfig,
    history: Iterable[GridResult] = (),
    city_scores: Mapping[str, Decimal] | None = None,
) -> Board:
    """Rank the grids examined in ``month`` and decide tiers, rewards, boards and deductions.

    ``indicators`` may lack a grid (treated as no ticket due); indicators of grids not examined
    are ignored. ``history`` holds earlier months' results; those of M-3..M-1 carry deductions.
    ``city_scores`` are the city's assessment scores of the month, by grid.
    """
    parse_month(month)
    for grid, given in exam.items():
        if given.grid != grid or given.month != month:
            raise ValueError(
                f"exam score keyed {grid!r} is for grid {given.grid!r} in {given.month},"
                f" not for {month}"
            )
    city = dict(city_scores or {})
    for grid, value in city.items():
        if not isinstance(value, Decimal) or not value.is_finite() or not 0 <= value <= 100:
            raise ValueError(f"city score of grid {grid!r}: {value!r} is not within 0..100")
    rates = {grid: _indicators(grid, indicators.get(grid)) for grid in exam}
    low_months = low_months_of(history, month)

    scored = [
        (grid, month_score(given.total, rates[grid], config.weights), given.total)
        for grid, given in exam.items()
    ]
    # Ties on score then exam go to the lower grid code: arbitrary but stable.
    scored.sort(key=lambda s: s[0])
    scored.sort(key=lambda s: (s[1], s[2]), reverse=True)

    rewards = {
        grid: decide_reward(
            month,
            score,
            city.get(grid),
            tiers=config.tiers,
            floor=config.floor,
            tiers_on=config.tiers_on,
            low_months=low_months.get(grid, ()),
        )
        for grid, score, _ in scored
    }
    n = len(scored)
    red_left = min(config.red_size, n // 2)
    yellow_count = min(config.yellow_size, n // 2)
    rows = []
    for rank, (grid, score, exam_total) in enumerate(scored, start=1):
        r = rewards[grid]
        red = rank <= n // 2 and red_left > 0 and not r.below_floor and score >= config.floor
        red_left -= red
        rows.append(
            GridResult(
                month=month,
                grid=grid,
                rank=rank,
                score=score,
                exam=exam_total,
                on_time_rate=rates[grid].on_time_rate,
                closure_rate=rates[grid].closure_rate,
                tier_zh=r.tier.name_zh if r.tier else None,
                tier_en=r.tier.name_en if r.tier else None,
                reward=r.reward,
                reward_lost=r.withheld,
                below_floor=r.below_floor,
                penalised=r.source_month is not None,
                penalty_source_month=r.source_month,
                penalty_until=r.until,
                red=red,
                yellow=rank > n - yellow_count,
                city_score=city.get(grid),
                basis=r.basis,
            )
        )
    penalties = []
    for grid, months in sorted(low_months.items()):
        source = covering_low_month(month, months)
        if source is not None:
            penalties.append(
                Penalty(
                    grid=grid,
                    source_month=source,
                    until=add_months(source, DEDUCTION_MONTHS),
                    examined=grid in exam,
                )
            )
    return Board(month=month, rows=tuple(rows), penalties=tuple(penalties))


def grid_history(results: Iterable[GridResult], grid: str) -> list[GridResult]:
    """One grid's stored results in month order (the history page of a grid)."""
    mine = sorted((r for r in results if r.grid == grid), key=lambda r: month_index(r.month))
    for before, after in pairwise(mine):
        if before.month == after.month:
            raise ValueError(f"grid {grid!r} has two results for {before.month}")
    return mine


def _fraction(rate: float | Decimal) -> Fraction:
    # repr() gives the shortest decimal that round-trips, so 0.85 counts as 85/100, not as the
    # binary float nearest to it.
    return Fraction(repr(rate)) if isinstance(rate, float) else Fraction(rate)


def _indicators(
    grid: str, given: GridIndicators | Mapping[str, float | Decimal | None] | None
) -> GridIndicators:
    if given is None:
        return GridIndicators()
    if isinstance(given, GridIndicators):
        values = {name: getattr(given, name) for name in INDICATORS}
    else:
        unknown = sorted(set(given) - set(INDICATORS))
        if unknown:
            raise ValueError(f"indicators of grid {grid!r}: unknown key(s) {', '.join(unknown)}")
        values = {name: given.get(name) for name in INDICATORS}
    for name, rate in values.items():
        if rate is None:
            continue
        if isinstance(rate, bool) or not isinstance(rate, int | float | Decimal):
            raise ValueError(f"indicators of grid {grid!r}: {name} must be a number or None")
        if not (math.isfinite(rate) and 0 <= rate <= 1):
            raise ValueError(f"indicators of grid {grid!r}: {name} {rate} is not within 0..1")
    return GridIndicators(**values)
