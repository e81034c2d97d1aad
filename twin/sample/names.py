"""Chinese names of the sample: people, places, roads, buildings and the Shenzhen administrative divisions.

Real names are used where domain.md gives them (the station, the named roads, 汇德大厦, Minzhi's communities,
Shenzhen's districts and subdistricts); everything else is made up from common syllables so that it reads
naturally without pretending to be a real building or person.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

StrArray = npt.NDArray[np.str_]

SURNAMES = tuple(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范"
    "金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = tuple(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉鹏飞斌宇浩凯健俊帆帅旭宁琳欣婷雪倩颖佳嘉子睿晨"
    "博思雨梓涵志海波峰坤鑫昊泽宏新春梅林亮晓东振国荣兴德永"
)
NUMERALS = ("零", "一", "二", "三", "四", "五", "六", "七", "八", "九", "十")

DISTRICT = ("龙华区", "440309")
SUBDISTRICT = ("民治街道", "440309004")
#: Minzhi's communities (domain.md) with a rough anchor, as a fraction of the district's half-size (u east, v north).
COMMUNITIES: tuple[tuple[str, float, float], ...] = (
    ("北站", 0.02, 0.0),
    ("民治", -0.1, 0.55),
    ("民康", -0.15, -0.72),
    ("民泰", -0.62, 0.12),
    ("民乐", 0.32, -0.55),
    ("民新", 0.38, 0.28),
    ("民强", -0.42, -0.32),
    ("新牛", 0.75, 0.05),
    ("龙塘", 0.62, 0.62),
    ("上芬", -0.58, 0.75),
    ("樟坑", 0.72, -0.5),
    ("白石龙", -0.72, -0.72),
    ("大岭", 0.22, 0.85),
)

#: Shenzhen's districts: name, administrative code, rough centre (lon, lat), subdistricts (74 in all).
#: 大鹏新区 is a functional area without a county code of its own; 440312 is made up for the sample.
SHENZHEN_DISTRICTS: tuple[tuple[str, str, float, float, tuple[str, ...]], ...] = (
    ("龙华区", "440309", 114.03, 22.66, ("民治", "龙华", "大浪", "福城", "观湖", "观澜")),
    ("福田区", "440304", 114.05, 22.54, ("园岭", "南园", "福田", "沙头", "香蜜湖", "梅林", "莲花", "华富", "福保",
                                          "华强北")),
    ("南山区", "440305", 113.93, 22.53, ("南头", "南山", "沙河", "蛇口", "招商", "粤海", "桃源", "西丽")),
    ("罗湖区", "440303", 114.13, 22.56, ("桂园", "黄贝", "东门", "翠竹", "南湖", "笋岗", "东湖", "莲塘", "东晓",
                                          "清水河")),
    ("宝安区", "440306", 113.85, 22.65, ("新安", "西乡", "航城", "福永", "福海", "沙井", "新桥", "松岗", "燕罗",
                                          "石岩")),
    ("龙岗区", "440307", 114.25, 22.70, ("平湖", "坂田", "布吉", "南湾", "横岗", "龙城", "龙岗", "坪地", "吉华",
                                          "园山", "宝龙")),
    ("光明区", "440311", 113.93, 22.77, ("光明", "公明", "新湖", "凤凰", "玉塘", "马田")),
    ("坪山区", "440310", 114.35, 22.70, ("坪山", "马峦", "碧岭", "石井", "坑梓", "龙田")),
    ("盐田区", "440308", 114.24, 22.58, ("梅沙", "盐田", "沙头角", "海山")),
    ("大鹏新区", "440312", 114.48, 22.58, ("大鹏", "南澳", "葵涌")),
)

_PLACE = tuple("民龙华新北泰康乐安和兴德宏景丰盛荣福祥瑞嘉锦绣春秋清明光辉科创汇金银玉梅松竹桂兰翠云峰岭湖溪")
_TOWER_PREFIX = ("北站", "致远", "汇龙", "鹏城", "深北", "龙华", "民治", "天汇", "君汇", "嘉诚", "泰和", "恒信",
                 "宏泰", "德润", "锦绣", "瑞丰", "华南", "丰泽", "星河湾", "云峰", "创新", "金融港", "前湾", "华章")
_TOWER_SUFFIX = ("中心", "大厦", "国际大厦", "广场", "金融中心", "商务中心", "科技大厦", "国际中心", "总部大厦",
                 "世纪中心", "天地", "时代广场")
_ROAD_SUFFIX = ("路", "街", "大道", "一路", "二路", "东路", "西路", "南路", "北路")
_COMPOUND_SUFFIX = ("花园", "苑", "家园", "华庭", "名苑", "雅居", "公馆", "新村", "山庄", "豪庭")
_PARK_SUFFIX = ("工业园", "科技园", "产业园", "创意园")


def numeral(n: int) -> str:
    """Chinese numeral for 1–99 (一, 十二, 二十三)."""
    if n <= 10:
        return NUMERALS[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else NUMERALS[tens]) + "十" + (NUMERALS[ones] if ones else "")


def person_names(rng: np.random.Generator, n: int) -> StrArray:
    """``n`` plausible Chinese personal names (surname + one or two given characters)."""
    surnames = np.asarray(SURNAMES)[rng.integers(0, len(SURNAMES), n)]
    first = np.asarray(GIVEN)[rng.integers(0, len(GIVEN), n)]
    second = np.where(rng.random(n) < 0.7, np.asarray(GIVEN)[rng.integers(0, len(GIVEN), n)], "")
    return np.strings.add(np.strings.add(surnames, first), second)


def road_names(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    """``n`` distinct made-up road names (two place syllables + 路/街/东路 …), avoiding ``taken``."""
    stems = [a + b for a in _PLACE for b in _PLACE if a != b]
    pool = [s + suffix for s in stems for suffix in _ROAD_SUFFIX if s + suffix not in taken]
    k = 3
    while len(pool) < n:
        pool.extend(s + numeral(k) + "路" for s in stems if s + numeral(k) + "路" not in taken)
        k += 1
    return [pool[i] for i in rng.permutation(len(pool))[:n]]


def tower_names(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    """``n`` distinct office-tower names (北站国际中心, 德润大厦, …), avoiding ``taken``."""
    pairs = [p + s for p in _TOWER_PREFIX for s in _TOWER_SUFFIX if p + s not in taken]
    order = rng.permutation(len(pairs))[:n]
    return [pairs[i] for i in order]


def compound_names(rng: np.random.Generator, n: int) -> StrArray:
    """``n`` residential-compound names (嘉泰花园, 锦云华庭, …); repeats are possible, as in real life."""
    a = np.asarray(_PLACE)[rng.integers(0, len(_PLACE), n)]
    b = np.asarray(_PLACE)[rng.integers(0, len(_PLACE), n)]
    suffix = np.asarray(_COMPOUND_SUFFIX)[rng.integers(0, len(_COMPOUND_SUFFIX), n)]
    return np.strings.add(np.strings.add(a, b), suffix)


def park_names(rng: np.random.Generator, n: int) -> StrArray:
    """``n`` industrial-park names (宏兴工业园, …)."""
    a = np.asarray(_PLACE)[rng.integers(0, len(_PLACE), n)]
    b = np.asarray(_PLACE)[rng.integers(0, len(_PLACE), n)]
    suffix = np.asarray(_PARK_SUFFIX)[rng.integers(0, len(_PARK_SUFFIX), n)]
    return np.strings.add(np.strings.add(a, b), suffix)


def ints_to_str(values: npt.ArrayLike, width: int = 0) -> StrArray:
    """Integers as zero-padded decimal strings, vectorised."""
    text = np.asarray(values).astype(np.int64).astype(np.str_)
    return np.strings.zfill(text, width) if width else text
