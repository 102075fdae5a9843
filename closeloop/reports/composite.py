"""The composite score (综合指标值) of a grid and its grade, as the supervision offices grade
their units: a weighted sum of rates, e.g. 按期处置率 × 60 + 结案率 × 30 + (1 − 返工率) × 10,
graded A ≥ 90, B ≥ 75, C ≥ 60, D ≥ 40, else E. The weights and the limits are configuration
(`[report.composite]`); pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from closeloop.config import ConfigError
from closeloop.reports.indicators import Figures

# The rates a weight may name; for those where less is better, (1 − rate) is what counts.
RATES = (
    "on_time_dispose_rate",
    "dispose_rate",
    "closure_rate",
    "on_time_rate",
    "rework_rate",
    "extension_rate",
    "on_time_verify_rate",
    "supervised_on_time_rate",
    "satisfaction_rate",
    "solved_rate",
)
LESS_IS_BETTER = frozenset({"rework_rate", "extension_rate"})
DEFAULT_WEIGHTS = (("on_time_dispose_rate", 60.0), ("closure_rate", 30.0), ("rework_rate", 10.0))
DEFAULT_GRADES = (("A", 90.0), ("B", 75.0), ("C", 60.0), ("D", 40.0))
DEFAULT_LOWEST = "E"


@dataclass(frozen=True)
class Composite:
    weights: tuple[tuple[str, float], ...] = DEFAULT_WEIGHTS
    grades: tuple[tuple[str, float], ...] = DEFAULT_GRADES  # highest limit first
    lowest: str = DEFAULT_LOWEST

    def score(self, f: Figures) -> float | None:
        """The weighted sum, or None when a weighted rate has no denominator (nothing due)."""
        total = 0.0
        for name, weight in self.weights:
            value = getattr(f, name)
            if value is None:
                return None
            total += weight * ((1.0 - value) if name in LESS_IS_BETTER else value)
        return round(total, 2)

    def grade(self, score: float | None) -> str | None:
        if score is None:
            return None
        for letter, limit in self.grades:
            if score >= limit:
                return letter
        return self.lowest

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Composite:
        """`[report.composite]`: a weight per rate (e.g. `on_time_dispose_rate = 60`),
        `grades = { A = 90, B = 75, C = 60, D = 40 }` and `lowest = "E"`."""
        where = "report.composite"
        weights: list[tuple[str, float]] = []
        for key, value in section.items():
            if key in ("grades", "lowest"):
                continue
            if key not in RATES:
                raise ConfigError(
                    "config.composite_rate", where=where, key=key, rates=", ".join(RATES)
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError("config.composite_weight", where=where, key=key, value=value)
            weights.append((key, float(value)))
        raw_grades = section.get("grades", dict(DEFAULT_GRADES))
        if not isinstance(raw_grades, Mapping) or not raw_grades:
            raise ConfigError("config.composite_grades", where=where)
        grades: list[tuple[str, float]] = []
        for letter, limit in raw_grades.items():
            if isinstance(limit, bool) or not isinstance(limit, int | float):
                raise ConfigError("config.composite_limit", where=where, letter=letter, value=limit)
            grades.append((str(letter), float(limit)))
        lowest = section.get("lowest", DEFAULT_LOWEST)
        if not isinstance(lowest, str) or not lowest:
            raise ConfigError("config.composite_lowest", where=where)
        return cls(
            weights=tuple(weights) or DEFAULT_WEIGHTS,
            grades=tuple(sorted(grades, key=lambda g: -g[1])),
            lowest=lowest,
        )


DEFAULT = Composite()
