"""Draw bench/load.py's results as a PNG: requests/s and CPU µs per request.

    bench/.venv/bin/python bench/chart.py bench/results/<timestamp>.json [more.json ...] [-o out.png]

One row per scenario, two panels side by side: requests/s per server (higher
is better) and the server's CPU µs per request (lower is better), both the
medians the markdown table shows. Each panel has its own scale: the scenarios
differ by orders of magnitude. Several files are merged, scenario by
scenario; where two hold the same server and scenario, the last one given
wins (and a warning says so).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

BENCH_DIR = Path(__file__).resolve().parent
# One colour per server, the same in every panel.
COLOURS = {
    "cppcorn": "#1f77b4",
    "cppcorn-uvloop": "#17becf",
    "cppcorn-reuse-port": "#9467bd",
    "uvicorn": "#ff7f0e",
    "granian": "#2ca02c",
    "nginx": "#7f7f7f",
}
OTHER_COLOUR = "#bcbd22"



def format_rate(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1e3:,.0f}k"
    return f"{value / 1e3:.1f}k" if value >= 1_000 else f"{value:.0f}"


def format_cpu(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:.1f}"


METRICS = (  # summary key, panel title, number format
    ("requests_per_s", "requests/s (median, higher is better)", format_rate),
    ("cpu_us_per_request", "server CPU µs per request (median, lower is better)", format_cpu),
)


@dataclass
class Results:
    """What the files hold, merged: scenario -> server -> its entry (summary, error, ...)."""

    scenarios: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    environments: list[dict[str, Any]] = field(default_factory=list)

    def add(self, path: Path) -> None:
        data = json.loads(path.read_text())
        if not isinstance(data.get("scenarios"), dict):
            raise SystemExit(f"{path}: not a bench/load.py result (bench/ws.py's are not supported)")
        env = data.get("environment", {})
        self.environments.append(env)
        for name, info in env.get("scenarios", {}).items():
            self.titles.setdefault(name, info.get("title", ""))
        for name, servers in data["scenarios"].items():
            merged = self.scenarios.setdefault(name, {})
            for entry in servers:
                if entry["server"] in merged:
                    print(f"warning: {name}/{entry['server']} is in several files; "
                          f"using {path}'s", file=sys.stderr)
                merged[entry["server"]] = entry


def draw_panel(ax: Any, entries: dict[str, dict[str, Any]], key: str, title: str,
               fmt: Callable[[float], str]) -> None:
    """Horizontal bars, one per server, top to bottom in the files' order."""
    from matplotlib.ticker import FuncFormatter

    names = list(entries)
    values = [entries[n]["summary"].get(key) for n in names]
    positions = range(len(names))
    ax.barh(positions, [v or 0 for v in values], color=[COLOURS.get(n, OTHER_COLOUR) for n in names])
    ax.set_yticks(positions, names)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=9, loc="left")
    top = max((v for v in values if v), default=1)
    ax.set_xlim(0, top * 1.18)  # room for the labels
    for y, name, value in zip(positions, names, values):
        if value is not None:
            label = fmt(value)
        else:
            label = "failed" if entries[name].get("error") else "errors in every round"
        ax.text((value or 0) + top * 0.01, y, label, va="center", fontsize=8)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: fmt(x) if x else "0"))
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)


def heading(results: Results) -> str:
    envs = results.environments
    first = envs[0]
    st = first.get("settings", {})
    dates = ", ".join(sorted({e.get("date", "?")[:16].replace("T", " ") for e in envs}))
    workers = st.get("workers", 1)
    how = (f"{workers} workers per server, unpinned" if workers > 1 else
           f"server on CPU {st.get('server_cpu')}, wrk on CPU {st.get('wrk_cpu')}")
    return (f"cppcorn load benchmark (bench/load.py), {dates}\n"
            f"{first.get('cpu_model', '?')}, {first.get('cpus', '?')} CPUs; {how}; "
            f"{st.get('rounds')} × {st.get('duration')} s rounds, medians")


def draw(results: Results, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    rows = len(results.scenarios)
    fig = plt.figure(figsize=(12, 0.8 + 2.6 * rows), layout="constrained")
    fig.suptitle(heading(results), fontsize=10)
    # One sub-figure per scenario: its caption over both of its panels.
    for subfig, (name, entries) in zip(fig.subfigures(rows, 1, squeeze=False)[:, 0],
                                       results.scenarios.items()):
        caption = f"{name}: {results.titles[name]}" if results.titles.get(name) else name
        subfig.suptitle(caption, fontsize=10, fontweight="bold", x=0.01, ha="left")
        for ax, (key, title, fmt) in zip(subfig.subplots(1, len(METRICS)), METRICS):
            draw_panel(ax, entries, key, title, fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description="Chart bench/load.py's JSON results (see bench/README.md).")
    parser.add_argument("results", nargs="+", type=Path, help="JSON files bench/load.py wrote (bench/results/)")
    parser.add_argument("-o", "--output", type=Path, default=BENCH_DIR / "results.png",
                        help="the PNG to write (default: bench/results.png)")
    args = parser.parse_args()
    results = Results()
    for path in args.results:
        results.add(path)
    if not results.scenarios:
        raise SystemExit("no scenario in these files")
    draw(results, args.output)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
