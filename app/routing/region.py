"""Where a caller's number is from: country, province and city (phonenumbers' geocoder).

Fixed lines resolve by area code (010 Beijing, 0755 Shenzhen). Chinese mobiles resolve by
号段: phonenumbers ships prefix data down to seven digits (``1380013`` -> 北京市,
``1370571`` -> 浙江省杭州市), so a mobile gets its province and city of registration; newer
ranges it has no data for (e.g. 170, 199) resolve only to the country ("中国"), and then the
region is unknown (``province`` None) and province/city rules do not match.

The geocoder's Chinese text ("广东省深圳市", "内蒙古呼和浩特市", "广西壮族自治区南宁市、崇左市")
is split with the province table below; names are compared without their suffix (省, 市,
自治区...) and case-insensitively in English, so a rule may say 广东, 广东省 or Guangdong.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

import phonenumbers
from phonenumbers import PhoneNumberType, geocoder
from pydantic import BaseModel, ConfigDict

# Province-level divisions: (Chinese short name, English name as the geocoder writes it).
PROVINCES: tuple[tuple[str, str], ...] = (
    ("北京", "Beijing"), ("天津", "Tianjin"), ("上海", "Shanghai"), ("重庆", "Chongqing"),
    ("河北", "Hebei"), ("山西", "Shanxi"), ("内蒙古", "Inner Mongolia"), ("辽宁", "Liaoning"),
    ("吉林", "Jilin"), ("黑龙江", "Heilongjiang"), ("江苏", "Jiangsu"), ("浙江", "Zhejiang"),
    ("安徽", "Anhui"), ("福建", "Fujian"), ("江西", "Jiangxi"), ("山东", "Shandong"),
    ("河南", "Henan"), ("湖北", "Hubei"), ("湖南", "Hunan"), ("广东", "Guangdong"),
    ("广西", "Guangxi"), ("海南", "Hainan"), ("四川", "Sichuan"), ("贵州", "Guizhou"),
    ("云南", "Yunnan"), ("西藏", "Tibet"), ("陕西", "Shaanxi"), ("甘肃", "Gansu"),
    ("青海", "Qinghai"), ("宁夏", "Ningxia"), ("新疆", "Xinjiang"), ("香港", "Hong Kong"),
    ("澳门", "Macau"), ("台湾", "Taiwan"),
)
MUNICIPALITIES = frozenset({"北京", "天津", "上海", "重庆"})
_ALIASES = {"xizang": "西藏", "macao": "澳门", "nei mongol": "内蒙古", "inner mongolia": "内蒙古"}
_SUFFIX = re.compile(
    r"(壮族自治区|回族自治区|维吾尔自治区|特别行政区|自治区|自治州|地区|省|市|盟)$"
)
_PROVINCE_SUFFIX = re.compile(r"^(壮族自治区|回族自治区|维吾尔自治区|特别行政区|自治区|省|市)")
_EN_SUFFIX = re.compile(r"\s+(province|city|shi|sheng)$")
_BY_KEY: dict[str, str] = {}
for _zh, _en in PROVINCES:
    _BY_KEY[_zh] = _zh
    _BY_KEY[_en.lower()] = _zh
_BY_KEY.update(_ALIASES)
_EN_OF = dict(PROVINCES)

NumberType = Literal["mobile", "fixed", "unknown"]


def name_key(name: str) -> str:
    """A place name for comparison: no suffix (省/市/自治区...), lower case."""
    text = name.strip()
    while True:
        stripped = _SUFFIX.sub("", text)
        if stripped == text or not stripped:
            break
        text = stripped
    return _EN_SUFFIX.sub("", text.lower()).strip()


def province_key(name: str) -> str | None:
    """The province's Chinese short name for 广东 / 广东省 / Guangdong; None if unknown."""
    return _BY_KEY.get(name_key(name))


class CallerRegion(BaseModel):
    """A caller's number and where it is registered (empty names when unknown)."""

    model_config = ConfigDict(frozen=True)

    number: str = ""
    country: str = ""
    province: str | None = None
    province_en: str | None = None
    cities: tuple[str, ...] = ()
    cities_en: tuple[str, ...] = ()
    number_type: NumberType = "unknown"
    description: str = ""

    @property
    def known(self) -> bool:
        return self.province is not None

    def label(self) -> str:
        if not self.number:
            return "withheld"
        parts = [self.description or self.country or "unknown region", self.number_type]
        return ", ".join(p for p in parts if p)

    def in_province(self, wanted: list[str]) -> bool:
        return self.province is not None and any(province_key(w) == self.province
                                                 for w in wanted)

    def in_city(self, wanted: list[str]) -> bool:
        names = {name_key(c) for c in (*self.cities, *self.cities_en)}
        return any(name_key(w) in names for w in wanted)


def _split_zh(description: str) -> tuple[str | None, tuple[str, ...]]:
    """"广东省深圳市" -> ("广东", ("深圳",)); "北京市" -> ("北京", ("北京",))."""
    for zh, _ in PROVINCES:
        if description.startswith(zh):
            rest = description[len(zh):]
            rest = _PROVINCE_SUFFIX.sub("", rest)
            cities = tuple(name_key(c) for c in re.split(r"[、/]", rest) if name_key(c))
            if not cities and zh in MUNICIPALITIES:
                cities = (zh,)
            return zh, cities
    return None, ()


def _split_en(description: str, province: str | None) -> tuple[str, ...]:
    """"Shenzhen, Guangdong" -> ("Shenzhen",); "Beijing" -> ("Beijing",)."""
    if "," in description:
        return tuple(c.strip() for c in description.rsplit(",", 1)[0].split("/") if c.strip())
    if province in MUNICIPALITIES:
        return (description.strip(),)
    return ()


@lru_cache(maxsize=65_536)
def lookup(number: str) -> CallerRegion:
    """The region of a caller's number (national Chinese numbers accepted); never raises."""
    if not number.strip():
        return CallerRegion()
    try:
        parsed = phonenumbers.parse(number, "CN")
    except phonenumbers.NumberParseException:
        return CallerRegion(number=number)
    country = phonenumbers.region_code_for_number(parsed) or ""
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    kind = phonenumbers.number_type(parsed)
    number_type: NumberType = (
        "mobile" if kind == PhoneNumberType.MOBILE
        else "fixed" if kind == PhoneNumberType.FIXED_LINE else "unknown"
    )
    zh = geocoder.description_for_number(parsed, "zh")
    en = geocoder.description_for_number(parsed, "en")
    province, cities = _split_zh(zh) if country == "CN" else (None, ())
    if province is None and country in ("HK", "MO", "TW"):
        province = {"HK": "香港", "MO": "澳门", "TW": "台湾"}[country]
    return CallerRegion(
        number=e164, country=country, province=province,
        province_en=_EN_OF.get(province) if province else None, cities=cities,
        cities_en=_split_en(en, province) if province else (), number_type=number_type,
        description=zh or en,
    )
