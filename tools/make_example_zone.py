"""Generate zones/example/grids.csv and grids.geojson: the article's zone as a four-level grid.

The shape and the counts are the article's (1 zone; 3 rural work areas + 13 enterprise-liaison
grids + 1 community; 21 villages + 91 enterprise small grids + 5 community sections; micro grids
under them). The five villages the article names keep their names; every other name, every
person and every phone number is invented.

The map (grids.geojson) is invented too, in a real place: a lon/lat box in central Zhejiang
(浙江, around 119.99-120.23 E, 29.32-29.46 N). The zone is
an irregular oval; its seventeen medium grids are the Voronoi cells of seeds laid out as a zone
is (rural work areas around, the enterprise-liaison grids together in an industrial belt, the
community in the middle), clipped to the zone; every grid below is cut the same way from its
parent with relaxed random seeds, so children tile their parent without overlap. Coordinates are
rounded to 1e-6 degrees (about 0.1 m). Same seed, same files:

    .venv/bin/python tools/make_example_zone.py            # writes the files
    .venv/bin/python tools/make_example_zone.py --check    # exit 1 if a file is stale
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections import Counter
from pathlib import Path

import shapely
from shapely.geometry import MultiPoint, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from closeloop.geo.rules import feature_collection
from closeloop.gridfile import GridRow, format_grid_csv

DEFAULT_SEED = 4231  # the article's "4231 work method"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "zones" / "example" / "grids.csv"
GEOMETRY_NAME = "grids.geojson"  # beside the CSV

# The zone on the map: an oval around this centre (lon, lat), radii in degrees.
CENTRE = (120.115, 29.39)
RADII = (0.11, 0.062)
PRECISION = 1e-6
# Medium grids' seeds, as fractions of the radii from the centre: work areas around, the
# enterprise groups in a belt east of the centre, the community in the middle.
AREA_SEEDS = ((-0.62, 0.42), (0.5, 0.6), (-0.35, -0.62))
COMMUNITY_SEED = (-0.12, 0.05)
ENTERPRISE_BELT = (0.42, -0.18)  # the belt's centre; 13 seeds on a 4 x 4 lattice around it

# The article never names the zone ("开发区"); this name is invented.
ZONE_CODE = "JS"
ZONE_NAME = "金山经济开发区"
COMMUNITY_NAME = "金山社区"

CN_NUMBERS = "一二三四五六七八九十"

# (name, handle stem) per work area; the five named villages first in their areas.
VILLAGES_BY_AREA: tuple[tuple[tuple[str, str], ...], ...] = (
    (
        ("堰头村", "yantou"),
        ("曹园村", "caoyuan"),
        ("东河村", "donghe"),
        ("西塘村", "xitang"),
        ("楼下村", "louxia"),
        ("上宅村", "shangzhai"),
        ("后山村", "houshan"),
    ),
    (
        ("苏溪村", "suxi"),
        ("九龙村", "jiulong"),
        ("新屋村", "xinwu"),
        ("溪口村", "xikou"),
        ("前湖村", "qianhu"),
        ("石桥村", "shiqiao"),
        ("里店村", "lidian"),
    ),
    (
        ("荆山夏村", "jingshanxia"),
        ("朱宅村", "zhuzhai"),
        ("塘头村", "tangtou"),
        ("王店村", "wangdian"),
        ("高塘村", "gaotang"),
        ("青山村", "qingshan"),
        ("桥西村", "qiaoxi"),
    ),
)
JIULONG = "九龙村"
SHAOTANG = ("邵塘", "shaotang")  # Jiulong's natural village, where April's big battle went

ENTERPRISE_GROUPS = 13
SMALL_GRIDS_PER_ENTERPRISE_GROUP = 7  # 13 x 7 = 91, the article's count
COMMUNITY_SECTIONS = 5

SURNAMES = "王李张刘陈杨黄赵吴周徐孙朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾楼金傅叶骆"
GIVEN_CHARS = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华建国志红玲文斌辉宇浩晨旭海燕林峰琴"
TRADE_NAMES = (
    "宏达",
    "恒信",
    "华美",
    "金盛",
    "永康",
    "鑫源",
    "佳和",
    "东方",
    "新亚",
    "瑞丰",
    "天成",
    "富达",
    "联创",
    "昌隆",
    "德润",
    "博远",
    "精诚",
    "立信",
    "顺发",
    "汇通",
    "明珠",
    "锦程",
    "广源",
    "泰和",
    "兴业",
    "凯旋",
    "振华",
    "嘉禾",
    "百川",
    "万达",
)
INDUSTRIES = (
    "五金制品",
    "纺织",
    "针织",
    "服饰",
    "塑料制品",
    "电子科技",
    "包装材料",
    "饰品",
    "工艺品",
    "印刷",
    "机械制造",
    "食品",
    "日用品",
    "文具",
    "玩具",
    "拉链",
    "袜业",
    "物流",
)


class _People:
    """Invented leaders: unique Chinese names, numbered fake phones, example.org mail."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()
        self._count = 0

    def leader(self, handle: str) -> tuple[str, str, str, str]:
        while True:
            given = "".join(self._rng.choices(GIVEN_CHARS, k=self._rng.choice((1, 2, 2))))
            name = self._rng.choice(SURNAMES) + given
            if name not in self._used:
                break
        self._used.add(name)
        self._count += 1
        return handle, name, f"1380000{self._count:04d}", f"{handle}@example.org"


def build_rows(seed: int = DEFAULT_SEED) -> list[GridRow]:
    """The example zone's grids, parents before children, each under its parent in file order."""
    rng = random.Random(seed)
    people = _People(rng)
    rows: list[GridRow] = []

    def add(code: str, name: str, level: int, kind: str, parent: str | None, handle: str) -> None:
        leader_handle, leader_name, phone, email = people.leader(handle)
        rows.append(
            GridRow(
                line=len(rows) + 2,
                code=code,
                name=name,
                level=level,
                kind=kind,
                parent_code=parent,
                leader_handle=leader_handle,
                leader_name=leader_name,
                leader_phone=phone,
                leader_email=email,
            )
        )

    add(ZONE_CODE, ZONE_NAME, 1, "zone", None, "zone.lead")

    village_number = 0
    for a, villages in enumerate(VILLAGES_BY_AREA, start=1):
        area = f"{ZONE_CODE}-A{a}"
        add(area, f"第{CN_NUMBERS[a - 1]}农村工作片", 2, "work_area", ZONE_CODE, f"area{a}.lead")
        for village_name, stem in villages:
            village_number += 1
            village = f"{area}-V{village_number:02d}"
            add(village, village_name, 3, "village", area, f"{stem}.lead")
            groups = [(f"{village_name}第{g}户组", f"{stem}.g{g}") for g in range(1, 7)]
            if village_name == JIULONG:
                main = groups[: rng.randint(2, 4)]
                shaotang = [
                    (f"{JIULONG}{SHAOTANG[0]}第{g}户组", f"{SHAOTANG[1]}.g{g}") for g in (1, 2)
                ]
                groups = main + shaotang
            else:
                groups = groups[: rng.randint(3, 6)]
            for g, (group_name, handle) in enumerate(groups, start=1):
                add(f"{village}-G{g:02d}", group_name, 4, "household_group", village, handle)

    companies = [t + i for t in TRADE_NAMES for i in INDUSTRIES]
    rng.shuffle(companies)
    for e in range(1, ENTERPRISE_GROUPS + 1):
        group = f"{ZONE_CODE}-E{e:02d}"
        group_name = f"第{_cn(e)}联企网格"
        add(group, group_name, 2, "enterprise_group", ZONE_CODE, f"ent{e:02d}.lead")
        for s in range(1, SMALL_GRIDS_PER_ENTERPRISE_GROUP + 1):
            small = f"{group}-S{s:02d}"
            add(small, f"{group_name}第{s}小网格", 3, "enterprise_grid", group, f"ent{e:02d}.s{s}")
            for q in range(1, rng.randint(1, 3) + 1):
                company = f"{companies.pop()}有限公司"
                add(f"{small}-Q{q}", company, 4, "enterprise", small, f"ent{e:02d}.s{s}.q{q}")

    community = f"{ZONE_CODE}-C1"
    add(community, COMMUNITY_NAME, 2, "community", ZONE_CODE, "community.lead")
    for s in range(1, COMMUNITY_SECTIONS + 1):
        section = f"{community}-S{s}"
        section_name = f"{COMMUNITY_NAME}第{_cn(s)}片区"
        add(section, section_name, 3, "community_section", community, f"community.s{s}")
        for g in range(1, rng.randint(2, 4) + 1):
            add(
                f"{section}-G{g}",
                f"{section_name}第{g}组",
                4,
                "household_group",
                section,
                f"community.s{s}.g{g}",
            )
    return rows


def _cn(n: int) -> str:
    """Chinese numeral for 1..99 as used in ordinal names (第十三)."""
    tens, ones = divmod(n, 10)
    if tens == 0:
        return CN_NUMBERS[ones - 1]
    head = "" if tens == 1 else CN_NUMBERS[tens - 1]
    return head + "十" + (CN_NUMBERS[ones - 1] if ones else "")


def render(seed: int = DEFAULT_SEED) -> str:
    return format_grid_csv(build_rows(seed))


# --- the map -----------------------------------------------------------------------------------


def _rounded(geom: BaseGeometry) -> BaseGeometry:
    return shapely.set_precision(geom, PRECISION)


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Only the areas of a clipping result (an intersection may also leave lines or points)."""
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and p.area > 0]
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def _zone_outline(rng: random.Random) -> BaseGeometry:
    cx, cy = CENTRE
    rx, ry = RADII
    points = []
    for i in range(28):
        a = 2 * math.pi * i / 28
        r = rng.uniform(0.9, 1.08)
        points.append((cx + rx * r * math.cos(a), cy + ry * r * math.sin(a)))
    return _rounded(Polygon(points))


def _cells(parent: BaseGeometry, seeds: list[Point]) -> list[BaseGeometry]:
    """The parent cut into the Voronoi cells of the seeds (each inside it), in seed order."""
    if len(seeds) == 1:
        return [parent]
    regions = shapely.get_parts(shapely.voronoi_polygons(MultiPoint(seeds), extend_to=parent))
    cells = []
    for seed in seeds:
        region = next(r for r in regions if r.covers(seed))
        cells.append(_polygonal(_rounded(region.intersection(parent))))
    return cells


def _random_seeds(parent: BaseGeometry, n: int, rng: random.Random) -> list[Point]:
    """n points inside the parent, spread by two rounds of Lloyd's relaxation."""
    minx, miny, maxx, maxy = parent.bounds
    seeds: list[Point] = []
    while len(seeds) < n:
        p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if parent.contains(p) and all(p.distance(q) > 1e-5 for q in seeds):
            seeds.append(p)
    for _ in range(2):
        if n == 1:
            break
        moved = []
        for cell, old in zip(_cells(parent, seeds), seeds, strict=True):
            c = cell.centroid
            moved.append(c if parent.contains(c) else old)
        seeds = moved
    return seeds


def build_geometry(rows: list[GridRow], seed: int = DEFAULT_SEED) -> dict[str, BaseGeometry]:
    """A polygon (or multipolygon) for every grid of `rows`, nested as the grid is."""
    rng = random.Random(seed * 7 + 1)
    children: dict[str, list[GridRow]] = {}
    for r in rows:
        if r.parent_code is not None:
            children.setdefault(r.parent_code, []).append(r)
    zone = next(r for r in rows if r.level == 1)
    shapes: dict[str, BaseGeometry] = {zone.code: _zone_outline(rng)}

    cx, cy = CENTRE
    rx, ry = RADII
    mediums = children[zone.code]
    lattice = [(i, j) for j in range(4) for i in range(4)][:13]
    areas = iter(AREA_SEEDS)
    belt = iter(lattice)
    seeds: list[Point] = []
    for m in mediums:
        if m.kind == "work_area":
            u, v = next(areas)
        elif m.kind == "community":
            u, v = COMMUNITY_SEED
        else:
            i, j = next(belt)
            u = ENTERPRISE_BELT[0] + (i - 1.5) * 0.13 + rng.uniform(-0.02, 0.02)
            v = ENTERPRISE_BELT[1] + (j - 1.5) * 0.16 + rng.uniform(-0.02, 0.02)
        seeds.append(Point(cx + u * rx, cy + v * ry))
    for m, cell in zip(mediums, _cells(shapes[zone.code], seeds), strict=True):
        shapes[m.code] = cell

    for r in rows:  # parents come before their children in `rows`
        kids = children.get(r.code)
        if not kids or r.level < 2:
            continue
        parent = shapes[r.code]
        cells = _cells(parent, _random_seeds(parent, len(kids), rng))
        for k, cell in zip(kids, cells, strict=True):
            shapes[k.code] = cell
    return shapes


def render_geometry(rows: list[GridRow], seed: int = DEFAULT_SEED) -> str:
    shapes = build_geometry(rows, seed)
    return (
        feature_collection(
            (r.code, shapes[r.code], {"name": r.name, "level": r.level}) for r in rows
        )
        + "\n"
    )


def summary(rows: list[GridRow]) -> str:
    by_level = Counter(r.level for r in rows)
    by_kind = Counter(r.kind for r in rows)
    levels = ", ".join(f"level {lv}: {by_level[lv]}" for lv in sorted(by_level))
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items()))
    return f"{len(rows)} grids ({levels}); {kinds}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if stale")
    args = parser.parse_args(argv)
    rows = build_rows(args.seed)
    text = format_grid_csv(rows)
    geo_out = args.out.with_name(GEOMETRY_NAME)
    geo_text = render_geometry(rows, args.seed)
    if args.check:
        stale = False
        for path, wanted, encoding in ((args.out, text, "utf-8-sig"), (geo_out, geo_text, "utf-8")):
            current = path.read_text(encoding=encoding) if path.exists() else None
            if current != wanted:
                print(f"{path} is not what seed {args.seed} generates", file=sys.stderr)
                stale = True
        if stale:
            return 1
        print(f"{args.out} and {geo_out.name} are up to date: {summary(rows)}")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8-sig")  # a BOM, so Excel shows Chinese
    geo_out.write_text(geo_text, encoding="utf-8")
    print(f"wrote {args.out} and {geo_out.name}: {summary(rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
