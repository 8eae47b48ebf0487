"""Caller region from the number: area codes for fixed lines, 号段 prefixes for mobiles."""

from __future__ import annotations

import pytest

from app.routing.region import lookup, province_key


@pytest.mark.parametrize(("number", "province", "cities", "kind"), [
    ("+8613800138000", "北京", ("北京",), "mobile"),     # 138-0013 号段: Beijing Mobile
    ("13800200000", "广东", ("广州",), "mobile"),         # national format, 138-0020: Guangzhou
    ("+8613705710000", "浙江", ("杭州",), "mobile"),
    ("+8613999100000", "新疆", ("乌鲁木齐",), "mobile"),   # 新疆 without 维吾尔自治区
    ("01012345678", "北京", ("北京",), "fixed"),          # 010 area code
    ("+8675512345678", "广东", ("深圳",), "fixed"),
    ("+864712345678", "内蒙古", ("呼和浩特",), "fixed"),
    ("+867712345678", "广西", ("南宁", "崇左"), "fixed"),  # 广西壮族自治区南宁市、崇左市
])
def test_province_and_city_of_chinese_numbers(number: str, province: str,
                                              cities: tuple[str, ...], kind: str) -> None:
    region = lookup(number)
    assert (region.province, region.cities, region.number_type) == (province, cities, kind)
    assert region.country == "CN" and region.number.startswith("+86")


def test_english_names_come_along() -> None:
    region = lookup("+8675512345678")
    assert (region.province_en, region.cities_en) == ("Guangdong", ("Shenzhen",))
    assert region.in_province(["Guangdong"]) and region.in_province(["广东省"])
    assert region.in_city(["深圳市"]) and region.in_city(["shenzhen"])
    assert not region.in_city(["广州"])


def test_unknown_ranges_foreign_withheld_and_garbage() -> None:
    new_range = lookup("+8617012345678")  # 170: the geocoder only knows "China"
    assert new_range.country == "CN" and new_range.province is None and not new_range.known
    assert new_range.number_type == "mobile"
    assert lookup("+14155552671").country == "US" and lookup("+14155552671").province is None
    hong_kong = lookup("+85221234567")
    assert (hong_kong.country, hong_kong.province) == ("HK", "香港")
    assert lookup("").label() == "withheld" and lookup("").number == ""
    assert lookup("not a number").province is None


@pytest.mark.parametrize(("name", "key"), [
    ("广东", "广东"), ("广东省", "广东"), ("Guangdong", "广东"), ("guangdong province", "广东"),
    ("新疆维吾尔自治区", "新疆"), ("北京市", "北京"), ("Inner Mongolia", "内蒙古"),
    ("Xizang", "西藏"), ("Atlantis", None), ("", None),
])
def test_province_names_in_either_language(name: str, key: str | None) -> None:
    assert province_key(name) == key
