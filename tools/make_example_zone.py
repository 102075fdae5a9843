"""Generate zones/example/grids.csv: the article's development zone as a four-level grid.

The shape and the counts are the article's (1 zone; 3 rural work areas + 13 enterprise-liaison
grids + 1 community; 21 villages + 91 enterprise small grids + 5 community sections; micro grids
under them). The five villages the article names keep their names; every other name, every
person and every phone number is invented. Same seed, same file:

    .venv/bin/python tools/make_example_zone.py            # writes the file
    .venv/bin/python tools/make_example_zone.py --check    # exit 1 if the file is stale
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

from closeloop.gridfile import GridRow, format_grid_csv

DEFAULT_SEED = 4231  # the article's "4231 work method"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "zones" / "example" / "grids.csv"

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
    if args.check:
        current = args.out.read_text(encoding="utf-8-sig") if args.out.exists() else None
        if current != text:
            print(f"{args.out} is not what seed {args.seed} generates", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date: {summary(rows)}")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8-sig")  # a BOM, so Excel shows Chinese
    print(f"wrote {args.out}: {summary(rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
