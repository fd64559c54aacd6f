"""The estimates as text (the `make cost` table) and as Markdown (README "Cost at idle", docs/cost.md)."""

from __future__ import annotations

from infra.cost.model import Assumptions, Estimate, Line
from infra.cost.prices import PriceTable

STAND_IN_NOTE = (
    "[<region> rate] = no price published for the environment's region was found and the rate published for "
    "<region> stands in; [region not stated] = the source names no region. Free tiers are not deducted, except the "
    "account's 3 free dashboards. Not counted: data transfer, interface endpoint data processing and KMS requests, "
    "Secrets Manager API calls, SageMaker ML storage volumes, S3 storage of derived tables and captured requests, "
    "support plans, taxes."
)


def _usd(value: float | None) -> str:
    return "unpriced" if value is None else f"{value:,.2f}"


def _quantity(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3g}"


def _unpriced(estimate: Estimate) -> list[str]:
    return [
        f"{line.item}: {_quantity(line.load_quantity)} {line.unit} under load (price: {line.price.source})"
        for line in estimate.unpriced("load")
    ]


def text(estimates: list[Estimate], load: Assumptions) -> str:
    out: list[str] = []
    for est in estimates:
        out.append(f"{est.stage} ({est.environment}: account {est.account}, {est.region}), USD a month")
        rows = [("Item", "Quantity idle / load", "Unit price", "Idle", "Load")]
        for line in est.lines:
            quantity = f"{_quantity(line.idle_quantity)} / {_quantity(line.load_quantity)} {line.unit}"
            rows.append((line.item, quantity, line.price.label, _usd(line.idle_usd), _usd(line.load_usd)))
        rows.append(("Total (priced lines)", "", "", f"{est.total('idle'):,.2f}", f"{est.total('load'):,.2f}"))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for n, row in enumerate(rows):
            out.append(
                "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
            )
            if n == 0 or n == len(rows) - 2:
                out.append("  ".join("-" * w for w in widths))
        for note in _unpriced(est):
            out.append(f"  not in the total, no cited price: {note}")
        out.append("")
    out.append("Load assumed (flags of `python -m infra.cost`, see --help):")
    out += [f"  - {a}" for a in load.describe()]
    out.append(f"Prices: infra/cost/prices.yaml, each with its source and the day it was read. {STAND_IN_NOTE}")
    return "\n".join(out)


def markdown_idle(estimates: list[Estimate]) -> str:
    """README's "Cost at idle" table: the lines that cost a cent or more at idle, the rest summed as pay per use."""
    items: list[str] = []
    for est in estimates:
        items += [line.item for line in est.lines if line.item not in items]
    fixed = [i for i in items if any(_costs_at_idle(e.find(i)) for e in estimates)]
    header = "| Item, USD a month (quantity) | " + " | ".join(e.stage for e in estimates) + " |"
    rows = [header, "| --- |" + " --- |" * len(estimates)]
    for item in fixed:
        rows.append(f"| {item} | " + " | ".join(_idle_cell(e.find(item)) for e in estimates) + " |")
    rest = [sum(line.idle_usd or 0.0 for line in e.lines if line.item not in fixed) for e in estimates]
    rows.append(
        "| Everything else at idle: pay per use (retraining, Glue, Firehose, S3, Athena, Step Functions, "
        "Lambda, DynamoDB, EventBridge) | " + " | ".join(f"{u:,.2f}" for u in rest) + " |"
    )
    rows.append("| **Total at idle** | " + " | ".join(f"**{e.total('idle'):,.2f}**" for e in estimates) + " |")
    return "\n".join(rows)


def _costs_at_idle(line: Line | None) -> bool:
    return line is not None and (line.idle_usd is None or line.idle_usd >= 0.005)


def _idle_cell(line: Line | None) -> str:
    if line is None:
        return "-"
    if line.idle_quantity == 0:
        return "0"
    return f"{_usd(line.idle_usd)} ({_quantity(line.idle_quantity)} {line.unit})"


def markdown_details(estimates: list[Estimate], load: Assumptions, prices: PriceTable) -> str:
    """docs/cost.md's generated part: per environment every line idle and under load, the assumptions, the prices."""
    out: list[str] = []
    for est in estimates:
        out += [
            f"### {est.stage} ({est.region})",
            "",
            "| Item | What | Quantity idle / load | Unit price (USD) | Idle | Load |",
            "| --- | --- | --- | --- | ---: | ---: |",
        ]
        for line in est.lines:
            quantity = f"{_quantity(line.idle_quantity)} / {_quantity(line.load_quantity)} {line.unit}"
            out.append(
                f"| {line.item} | {line.detail} | {quantity} | {line.price.label} | "
                f"{_usd(line.idle_usd)} | {_usd(line.load_usd)} |"
            )
        out.append(f"| **Total** (priced lines) | | | | **{est.total('idle'):,.2f}** | **{est.total('load'):,.2f}** |")
        unpriced = _unpriced(est)
        if unpriced:
            out += ["", "Not in the totals, no cited price: " + "; ".join(unpriced) + "."]
        out.append("")
    out += ["### Load assumed", ""] + [f"- {a}" for a in load.describe()] + [""]
    regions = sorted({e.region for e in estimates})
    out += [
        "### Prices",
        "",
        "Every entry of `infra/cost/prices.yaml` (USD):",
        "",
        "| Price | Unit | " + " | ".join(regions) + " | Source | Read |",
        "| --- | --- |" + " --- |" * len(regions) + " --- | --- |",
    ]
    for item in prices.entries:
        by_region = [prices.get(item, region) for region in regions]
        first = by_region[0]
        cells = " | ".join(price.label for price in by_region)
        source = f"{first.source} (note: {first.note})" if first.note else first.source
        out.append(f"| `{item}` | {first.unit} | {cells} | {source} | {first.read} |")
    out += ["", STAND_IN_NOTE]
    return "\n".join(out)
