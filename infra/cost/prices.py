"""The price table (infra/cost/prices.yaml): every unit price with its region, unit, source and the day it was read.

A price published for another region than the environment's is a stand-in and carries that region as `basis`; a
price no source was found for is None and the model reports its quantity as unpriced.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.yaml_file import read_yaml

PRICES_FILE = Path(__file__).with_name("prices.yaml")


class PriceError(Exception):
    """The price table is malformed or lacks a price the model needs. str(err) names the file and the entry."""


@dataclass(frozen=True)
class Price:
    item: str
    region: str
    value: float | None  # USD per unit; None = no cited price
    unit: str
    source: str
    read: str
    basis: str | None = None  # region the price was published for, when not `region` itself
    note: str | None = None

    @property
    def label(self) -> str:
        """The price as printed beside a figure: value, and the stand-in region if any."""
        if self.value is None:
            return "no cited price"
        if not self.basis:
            return f"{self.value:g}"
        basis = " [region not stated]" if self.basis == "unstated" else f" [{self.basis} rate]"
        return f"{self.value:g}{basis}"


@dataclass(frozen=True)
class PriceTable:
    path: Path
    entries: dict[str, dict[str, Any]]

    def get(self, item: str, region: str) -> Price:
        entry = self.entries.get(item)
        if entry is None:
            hint = " (add the instance type with its source)" if item.startswith("sagemaker:") else ""
            raise PriceError(f"{self.path}: no entry '{item}'{hint}")
        regional = entry["regions"].get(region)
        if regional is None:
            raise PriceError(f"{self.path}: {item}: no price for region {region} (regions: {sorted(entry['regions'])})")
        return Price(
            item=item,
            region=region,
            value=regional.get("price"),
            unit=entry["unit"],
            source=" ".join(str(entry["source"]).split()),
            read=str(entry["read"]),
            basis=regional.get("basis"),
            note=" ".join(str(entry["note"]).split()) if entry.get("note") else None,
        )

    def instance(self, instance_type: str, region: str) -> Price:
        return self.get(f"sagemaker:{instance_type}", region)


def load_prices(path: Path = PRICES_FILE) -> PriceTable:
    raw = read_yaml(path, PriceError)
    if not isinstance(raw, dict) or not isinstance(raw.get("prices"), dict):
        raise PriceError(f"{path}: expected a top-level mapping 'prices'")
    for item, entry in raw["prices"].items():
        _check_entry(path, str(item), entry)
    return PriceTable(path, raw["prices"])


def _check_entry(path: Path, item: str, entry: object) -> None:
    where = f"{path}: {item}"
    if not isinstance(entry, dict):
        raise PriceError(f"{where}: expected a mapping with unit, regions, source and read")
    unknown = set(entry) - {"unit", "regions", "source", "read", "note"}
    if unknown:
        raise PriceError(f"{where}: unknown field(s) {sorted(unknown)}")
    for field in ("unit", "regions", "source", "read"):
        if not entry.get(field):
            raise PriceError(
                f"{where}: '{field}' is missing or empty (every price names its unit, source and day read)"
            )
    try:
        datetime.date.fromisoformat(str(entry["read"]))
    except ValueError:
        raise PriceError(f"{where}: read '{entry['read']}' is not a date (YYYY-MM-DD)") from None
    if not isinstance(entry["regions"], dict):
        raise PriceError(f"{where}: regions must map a region to {{price, basis}}")
    for region, regional in entry["regions"].items():
        if not isinstance(regional, dict) or "price" not in regional or set(regional) - {"price", "basis"}:
            raise PriceError(f"{where}: regions.{region}: expected {{price: <USD or null>, basis: <region>}}")
        price = regional["price"]
        if price is not None and (isinstance(price, bool) or not isinstance(price, (int, float)) or price < 0):
            raise PriceError(f"{where}: regions.{region}.price {price!r} is not a non-negative number or null")
        if price is None and regional.get("basis"):
            raise PriceError(f"{where}: regions.{region}: a null price has no basis")
