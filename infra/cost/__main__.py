"""`python -m infra.cost`: the monthly cost of each environment, idle and under a stated load (docs/cost.md).

Reads cdk.out (synthesize first: `make cost` does), config/*.yaml and infra/cost/prices.yaml; no AWS call.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from infra.config import ConfigError, load_all
from infra.cost.docs import DocsError, with_generated_block, with_readme_table
from infra.cost.inventory import InventoryError, read_stage
from infra.cost.model import Assumptions, Estimate, estimate
from infra.cost.prices import PRICES_FILE, PriceError, PriceTable, load_prices
from infra.cost.report import markdown_details, markdown_idle, text
from infra.cost.schedules import ScheduleError


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.cost", description=__doc__.splitlines()[0])
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"), help="synthesized cloud assembly")
    parser.add_argument("--config-dir", type=Path, default=Path("config"), help="environment files")
    parser.add_argument("--prices", type=Path, default=PRICES_FILE, help="price table")
    parser.add_argument("--env", help="one environment (a config/<env>.yaml name); default all")
    parser.add_argument(
        "--markdown",
        choices=("idle", "details"),
        help="print README's idle table or docs/cost.md's generated part instead of the text table",
    )
    parser.add_argument(
        "--write-docs",
        type=Path,
        metavar="ROOT",
        help="replace README.md's idle table and docs/cost.md's generated part under ROOT (with the default load)",
    )
    defaults = Assumptions()
    for f in fields(Assumptions):
        kind = int if isinstance(getattr(defaults, f.name), int) else float
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=kind,
            default=getattr(defaults, f.name),
            metavar="N",
            help=f"load assumption (default {getattr(defaults, f.name)})",
        )
    return parser.parse_args(argv)


def estimates(
    cdk_out: Path, config_dir: Path, prices_path: Path, load: Assumptions, only: str | None = None
) -> list[Estimate]:
    """Every environment's estimate (or `only`'s), cheapest at idle first (dev, staging, prod as shipped)."""
    prices = load_prices(prices_path)
    result = [estimate(c, read_stage(cdk_out, c.stage_name), prices, load) for c in load_all(config_dir, only)]
    return sorted(result, key=lambda e: (e.total("idle"), e.environment))


def _check_load(load: Assumptions) -> str | None:
    negative = [f"--{f.name.replace('_', '-')}" for f in fields(Assumptions) if getattr(load, f.name) < 0]
    if negative:
        return f"{', '.join(negative)} must not be negative"
    if load.spot_discount_percent > 100:
        return "--spot-discount-percent must be at most 100"
    if load.async_active_hours_per_day > 24:
        return "--async-active-hours-per-day must be at most 24"
    return None


def _write_docs(root: Path, result: list[Estimate], load: Assumptions, prices: PriceTable) -> int:
    if load != Assumptions():
        print("cost: error: --write-docs writes the tables for the default load; drop the load flags", file=sys.stderr)
        return 2
    readme, doc = root / "README.md", root / "docs" / "cost.md"
    try:
        new_readme = with_readme_table(readme.read_text(), markdown_idle(result))
        new_doc = with_generated_block(doc.read_text(), markdown_details(result, load, prices))
    except (OSError, DocsError) as err:
        print(f"cost: error: {err}", file=sys.stderr)
        return 1
    for path, content in ((readme, new_readme), (doc, new_doc)):
        changed = path.read_text() != content
        path.write_text(content)
        print(f"{path}: {'updated' if changed else 'unchanged'}")
    return 0


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    load = Assumptions(**{f.name: getattr(args, f.name) for f in fields(Assumptions)})
    problem = _check_load(load)
    if problem:
        print(f"cost: error: {problem}", file=sys.stderr)
        return 2
    try:
        result = estimates(args.cdk_out, args.config_dir, args.prices, load, args.env)
    except (ConfigError, InventoryError, PriceError, ScheduleError) as err:
        print(f"cost: error: {err}", file=sys.stderr)
        return 1
    if args.write_docs is not None:
        return _write_docs(args.write_docs, result, load, load_prices(args.prices))
    if args.markdown == "idle":
        print(markdown_idle(result))
    elif args.markdown == "details":
        print(markdown_details(result, load, load_prices(args.prices)))
    else:
        print(text(result, load))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
