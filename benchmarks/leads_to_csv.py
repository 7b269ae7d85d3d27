"""Write a generated lead portal (sandbox/leads.py, a known truth) as heatsync CSV files.

    python benchmarks/leads_to_csv.py [OUT_DIR] [--contacts 8000] [--seed 0]   # default: ./leads

contacts.csv, activities.csv and deals.csv in the canonical columns: what `heatsync score`,
`backtest` and `calibrate` take. The portal's last as-of day is 2026-10-01 and its leads convert
(a won deal) within 14 days after each as-of day, so `backtest --as-of 2026-10-01 --horizon 14d`
asks the question the lead benchmark asks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.leads import generate_leads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=Path("leads"))
    parser.add_argument("--contacts", type=int, default=8_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    portal = generate_leads(args.contacts, seed=args.seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("contacts", "activities", "deals"):
        getattr(portal, name).to_csv(args.out_dir / f"{name}.csv", index=False)
    print(
        f"wrote {len(portal.contacts):,} contacts, {len(portal.activities):,} activities and "
        f"{len(portal.deals):,} deals to {args.out_dir}/"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
