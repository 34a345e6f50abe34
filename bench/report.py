"""How every benchmark here reports: the machine's load, and one table shape.

A table puts Steward and its peer side by side, each as the median of its
repeats with their spread, then the ratio, then what was checked about the
outputs (both answers equal, or each equal to a reference). A later
benchmark with another peer (fairlearn and SHAP called directly, Evidently)
or a third column (the MLflow client talking to Steward) uses the same
table with its own column names.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field


def machine_load() -> str:
    """Load averages (1, 5, 15 min): the machine is shared, and figures mean little when it is busy."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def print_load(when: str) -> None:
    print(f"{when}: {machine_load()}", flush=True)


def median_spread(values: list[float]) -> tuple[float, float]:
    """The median, and the spread of the values as (max - min) / median."""
    middle = statistics.median(values)
    return middle, (max(values) - min(values)) / middle if middle else 0.0


@dataclass
class Row:
    measure: str
    unit: str
    higher_is_better: bool
    values: dict[str, list[float]]
    checked: str


@dataclass
class Table:
    """Rows of one comparison; the ratio compares the first column with the best of the others.

    With one peer that is simply the peer; with a peer in several modes (MLflow's
    synchronous and asynchronous logging) it is the peer in its best mode for that row.
    """

    title: str
    columns: tuple[str, ...] = ("Steward", "MLflow")
    rows: list[Row] = field(default_factory=list)

    def add(self, measure: str, unit: str, values: dict[str, list[float] | float], *,
            higher_is_better: bool, checked: str) -> None:
        as_lists = {k: v if isinstance(v, list) else [v] for k, v in values.items()}
        self.rows.append(Row(measure, unit, higher_is_better, as_lists, checked))

    def ratio(self, row: Row) -> float | None:
        first = row.values.get(self.columns[0])
        peers = [statistics.median(v) for c in self.columns[1:] if (v := row.values.get(c))]
        if not first or not peers:
            return None
        a = statistics.median(first)
        b = max(peers) if row.higher_is_better else min(peers)
        if not a or not b:
            return None
        return a / b if row.higher_is_better else b / a

    def render(self) -> str:
        width = max([len(r.measure) for r in self.rows] + [20])
        repeats = max((len(v) for r in self.rows for v in r.values.values()), default=1)
        cells = [f"{c} (±spread)" if repeats > 1 else c for c in self.columns]
        ratio_name = f"vs {self.columns[1]}" if len(self.columns) == 2 else "vs best peer"
        header = (f"{'measure':<{width}} " + " ".join(f"{c:>20}" for c in cells)
                  + f" {'unit':<10} {ratio_name:>16}  outputs")
        lines = [self.title, header, "-" * len(header)]
        for row in self.rows:
            out = []
            for column in self.columns:
                values = row.values.get(column)
                if not values:
                    out.append(f"{'-':>20}")
                    continue
                middle, spread = median_spread(values)
                text = _number(middle) + (f" ±{spread * 100:.0f}%" if len(values) > 1 else "")
                out.append(f"{text:>20}")
            ratio = self.ratio(row)
            ratio_text = f"{ratio:,.1f}x {'better' if ratio >= 1 else 'worse'}" if ratio else "n/a"
            lines.append(f"{row.measure:<{width}} " + " ".join(out)
                         + f" {row.unit:<10} {ratio_text:>16}  {row.checked}")
        if repeats > 1:
            lines.append(f"median of {repeats} repeats; ±spread is (max - min) / median")
        return "\n".join(lines)

    def print(self) -> None:
        print()
        print(self.render(), flush=True)


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:,.2f}"
    return f"{value:.4f}"
