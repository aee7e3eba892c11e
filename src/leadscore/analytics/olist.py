"""Convert the public Olist marketing-funnel data set into files ``leadscore`` imports.

Input (a folder): ``olist_marketing_qualified_leads_dataset.csv`` (mql_id, first_contact_date
DD-MM-YYYY, landing_page_id, origin) and ``olist_closed_deals_dataset.csv`` (mql_id, won_date
DD-MM-YYYY HH:MM, business_segment, lead_type, ...). Output: ``leads.csv`` (lead_id,
created_at, origin, landing_page_id, business_segment, lead_type) and ``outcomes.csv``
(lead_id, outcome, at) with ISO 8601 UTC moments::

    python -m leadscore.analytics.olist /work/shared/data/olist olist-out
    leadscore import --leads olist-out/leads.csv --db sqlite:///olist.db
    leadscore outcomes olist-out/outcomes.csv --db sqlite:///olist.db
"""

from __future__ import annotations

import csv
import sys
from datetime import datetime
from pathlib import Path

from leadscore.errors import InputError

MQL_FILE = "olist_marketing_qualified_leads_dataset.csv"
DEALS_FILE = "olist_closed_deals_dataset.csv"


def parse_day_first(value: str, file: str, row: int, column: str) -> str:
    """``DD-MM-YYYY`` or ``DD-MM-YYYY HH:MM[:SS]`` as ISO 8601 UTC."""
    text = value.strip()
    for fmt in ("%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y"):
        try:
            return datetime.strptime(text, fmt).strftime("%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            continue
    raise InputError(f"not a DD-MM-YYYY date: '{value}'", file=file, row=row, column=column)


def convert(folder: Path, out: Path) -> dict[str, int]:
    """Write ``leads.csv`` and ``outcomes.csv`` into ``out``; returns the row counts."""
    out.mkdir(parents=True, exist_ok=True)
    deals: dict[str, dict[str, str]] = {}
    with (folder / DEALS_FILE).open(newline="", encoding="utf-8-sig") as handle:
        for row, record in enumerate(csv.DictReader(handle), start=1):
            record["won_at"] = parse_day_first(record["won_date"], DEALS_FILE, row, "won_date")
            deals[record["mql_id"]] = record
    leads_written = outcomes_written = 0
    with (folder / MQL_FILE).open(newline="", encoding="utf-8-sig") as handle, \
            (out / "leads.csv").open("w", newline="", encoding="utf-8") as leads_out, \
            (out / "outcomes.csv").open("w", newline="", encoding="utf-8") as outcomes_out:
        leads_csv = csv.writer(leads_out)
        outcomes_csv = csv.writer(outcomes_out)
        leads_csv.writerow(["lead_id", "created_at", "origin", "landing_page_id", "business_segment", "lead_type"])
        outcomes_csv.writerow(["lead_id", "outcome", "at"])
        for row, record in enumerate(csv.DictReader(handle), start=1):
            lead_id = record["mql_id"]
            deal = deals.get(lead_id, {})
            created = parse_day_first(record["first_contact_date"], MQL_FILE, row, "first_contact_date")
            leads_csv.writerow([lead_id, created, record.get("origin", ""), record.get("landing_page_id", ""),
                                deal.get("business_segment", ""), deal.get("lead_type", "")])
            leads_written += 1
            if deal:
                outcomes_csv.writerow([lead_id, "customer", deal["won_at"]])
                outcomes_written += 1
    return {"leads": leads_written, "outcomes": outcomes_written, "deals": len(deals)}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m leadscore.analytics.olist OLIST_FOLDER OUT_FOLDER", file=sys.stderr)
        return 2
    counts = convert(Path(args[0]), Path(args[1]))
    print(f"{counts['leads']} leads, {counts['outcomes']} outcomes ({counts['deals']} closed deals) -> {args[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
