"""The month's cross-inspection plan (交叉考核): which inspecting grid scores which examined grid.

"组织10个网格交叉考核打分": ten inspecting grids score the examined grids crosswise. The plan
assigns every examined grid to exactly one inspector, by these rules in order of weight:

1. never itself (a hard rule: an inspector is never offered its own grid);
2. balanced: the inspectors' counts differ by at most one (a hard rule);
3. not the same pair as the previous month (given the previous plan);
4. not a grid of the inspector's own medium grid (中网格) when another choice is possible;
5. otherwise spread at random, seeded by the month, so a month's plan is always the same.

It is solved exactly as a minimum-cost flow (grids -> inspectors -> sink, each inspector with
``n // k`` free places and one more place that costs more than any lower rule can save), with
costs so each rule outweighs all the rules below it together. Rules 3 and 4 only give way
when nothing else satisfies the rules above them; the plan then says how often they did.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from closeloop.months import parse_month

# Rule weights: each larger than anything the rules below it can add over a whole plan.
_TIE_MAX = 7
_OWN_MEDIUM = 1_000  # > 117 grids * 7
_REPEAT = 1_000_000  # > grids * own-medium cost, up to 999 grids
_EXTRA_PLACE = 10**12  # balance outweighs everything


class PlanError(ValueError):
    """No plan is possible (e.g. no inspector, or a lone inspector examining itself)."""


@dataclass(frozen=True)
class Assignment:
    inspector_grid: str
    grid: str


@dataclass(frozen=True)
class Plan:
    month: str
    assignments: tuple[Assignment, ...]  # sorted by grid
    repeats: int  # pairs also in the previous month's plan (0 unless unavoidable)
    own_medium: int  # grids inspected by a grid of their own medium grid

    def by_inspector(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for a in self.assignments:
            out.setdefault(a.inspector_grid, []).append(a.grid)
        return out

    def inspector_of(self, grid: str) -> str | None:
        return next((a.inspector_grid for a in self.assignments if a.grid == grid), None)


def make_plan(
    month: str,
    inspectors: Sequence[str],
    examined: Mapping[str, str | None],
    previous: Sequence[Assignment] = (),
    inspector_medium: Mapping[str, str | None] | None = None,
) -> Plan:
    """The plan for ``month``.

    ``examined`` maps each examined grid to its medium grid; ``inspector_medium`` maps each
    inspector to its own medium grid (an inspector that is itself a medium grid maps to itself;
    default: looked up in ``examined``, else the inspector itself). ``previous`` is last month's
    plan.
    """
    parse_month(month)
    inspectors = list(dict.fromkeys(inspectors))
    grids = sorted(examined)
    if not grids:
        return Plan(month, (), 0, 0)
    if not inspectors:
        raise PlanError("no inspecting grid: set [exam] inspectors")
    medium_of = {i: (inspector_medium or {}).get(i) or examined.get(i) or i for i in inspectors}
    before = {(a.inspector_grid, a.grid) for a in previous}
    rng = random.Random(f"closeloop exam plan {month}")

    k, n = len(inspectors), len(grids)
    base = n // k
    # Nodes: 0 source, 1..n grids, n+1..n+k inspectors, n+k+1 sink.
    source, sink = 0, n + k + 1
    graph = _Graph(n + k + 2)
    for g_index, grid in enumerate(grids, start=1):
        graph.add(source, g_index, 1, 0)
        for i_index, inspector in enumerate(inspectors):
            if inspector == grid:
                continue
            cost = rng.randint(0, _TIE_MAX)
            if medium_of[inspector] == examined[grid]:
                cost += _OWN_MEDIUM
            if (inspector, grid) in before:
                cost += _REPEAT
            graph.add(g_index, n + 1 + i_index, 1, cost)
    for i_index in range(k):
        if base:
            graph.add(n + 1 + i_index, sink, base, 0)
        graph.add(n + 1 + i_index, sink, 1, _EXTRA_PLACE)
    flow = graph.min_cost_flow(source, sink, n)
    if flow < n:
        raise PlanError(f"only {flow} of {n} grids can be given an inspector other than themselves")
    assignments = []
    for g_index, grid in enumerate(grids, start=1):
        for edge in graph.edges[g_index]:
            to, _, cap, _ = edge
            if n + 1 <= to <= n + k and cap == 0 and edge[3] >= 0:
                assignments.append(Assignment(inspectors[to - n - 1], grid))
                break
    plan = Plan(
        month=month,
        assignments=tuple(assignments),
        repeats=sum((a.inspector_grid, a.grid) in before for a in assignments),
        own_medium=sum(medium_of[a.inspector_grid] == examined[a.grid] for a in assignments),
    )
    check_plan(plan, inspectors, examined)
    return plan


def check_plan(plan: Plan, inspectors: Sequence[str], examined: Mapping[str, str | None]) -> None:
    """Raise PlanError unless every examined grid has one inspector, not itself, balanced."""
    got = [a.grid for a in plan.assignments]
    if sorted(got) != sorted(examined) or len(set(got)) != len(got):
        raise PlanError("the plan does not give every examined grid exactly one inspector")
    if any(a.inspector_grid == a.grid for a in plan.assignments):
        raise PlanError("a grid inspects itself")
    counts = [len(plan.by_inspector().get(i, [])) for i in inspectors]
    if counts and max(counts) - min(counts) > 1:
        raise PlanError(f"unbalanced plan: counts {counts}")


class _Graph:
    """A residual graph for successive shortest paths (Dijkstra with potentials)."""

    def __init__(self, size: int) -> None:
        self.size = size
        # edge: [to, reverse index, capacity, cost]; reverse edges have negative cost.
        self.edges: list[list[list[int]]] = [[] for _ in range(size)]

    def add(self, frm: int, to: int, cap: int, cost: int) -> None:
        self.edges[frm].append([to, len(self.edges[to]), cap, cost])
        self.edges[to].append([frm, len(self.edges[frm]) - 1, 0, -cost])

    def min_cost_flow(self, source: int, sink: int, want: int) -> int:
        potential = [0] * self.size
        flow = 0
        inf = float("inf")
        while flow < want:
            dist: list[float] = [inf] * self.size
            dist[source] = 0
            prev: list[tuple[int, int] | None] = [None] * self.size
            heap: list[tuple[float, int]] = [(0, source)]
            while heap:
                d, node = heapq.heappop(heap)
                if d > dist[node]:
                    continue
                for index, (to, _, cap, cost) in enumerate(self.edges[node]):
                    if cap <= 0:
                        continue
                    nd = d + cost + potential[node] - potential[to]
                    if nd < dist[to]:
                        dist[to] = nd
                        prev[to] = (node, index)
                        heapq.heappush(heap, (nd, to))
            if dist[sink] == inf:
                break
            for node in range(self.size):
                if dist[node] < inf:
                    potential[node] += int(dist[node])
            node = sink
            while node != source:
                step = prev[node]
                assert step is not None
                frm, index = step
                edge = self.edges[frm][index]
                edge[2] -= 1
                self.edges[node][edge[1]][2] += 1
                node = frm
            flow += 1
        return flow
