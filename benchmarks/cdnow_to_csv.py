"""Write the bundled CDNOW purchase log as heatsync CSV files (contacts.csv and deals.csv).

    python benchmarks/cdnow_to_csv.py [OUT_DIR]        # default: ./cdnow

One contact per customer (created at the first purchase; zero-padded ids kept as text) and one
won deal per purchase (closed_at = its day, amount = dollar_value), read by benchmarks/cdnow.py's
loader. The files are what `heatsync score`, `backtest` and `calibrate` take.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cdnow import load_cdnow


def main(out_dir: Path) -> None:
    contacts, _, deals = load_cdnow()
    out_dir.mkdir(parents=True, exist_ok=True)
    day = "%Y-%m-%d"
    contacts.assign(created_at=contacts["created_at"].dt.strftime(day))[
        ["contact_id", "created_at"]
    ].to_csv(out_dir / "contacts.csv", index=False)
    deals.assign(closed_at=deals["closed_at"].dt.strftime(day))[
        ["deal_id", "contact_id", "closed_at", "status", "amount", "currency"]
    ].to_csv(out_dir / "deals.csv", index=False)
    print(f"wrote {len(contacts):,} contacts and {len(deals):,} deals to {out_dir}/")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("cdnow"))
