"""bench/load.py's or bench/ws.py's JSON results as a PNG: a row per scenario, the medians of requests (or
round trips) per second and of server CPU µs per one, side by side, each panel on its own scale. Several files
are merged scenario by scenario, the last one winning where two hold the same server (bench/README.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
COLOURS = {"cppcorn": "#1f77b4", "cppcorn-baseline": "#aec7e8", "cppcorn-uvloop": "#17becf",
           "cppcorn-reuse-port": "#9467bd", "uvicorn": "#ff7f0e", "granian": "#2ca02c", "nginx": "#7f7f7f"}


def format_rate(value: float) -> str:
    return f"{value / 1e3:,.0f}k" if value >= 10_000 else f"{value / 1e3:.1f}k" if value >= 1_000 else f"{value:.0f}"


def format_cpu(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:.1f}"


def load(paths: list[Path]) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, str], list[dict[str, Any]]]:
    """scenario -> server -> its entry (summary, error...), scenario titles, and the files' environments."""
    scenarios: dict[str, dict[str, dict[str, Any]]] = {}
    titles, environments = {}, []
    for path in paths:
        data = json.loads(path.read_text())
        environments.append(data["environment"])
        for name, scenario in data["scenarios"].items():
            titles[name] = scenario["title"]
            merged = scenarios.setdefault(name, {})
            for entry in scenario["results"]:
                if entry["server"] in merged:
                    print(f"warning: {name}/{entry['server']} is in several files; using {path}'s", file=sys.stderr)
                merged[entry["server"]] = entry
    return scenarios, titles, environments


def draw_panel(ax: Any, entries: dict[str, dict[str, Any]], key: str, title: str, fmt: Any) -> None:
    """Horizontal bars, one per server, top to bottom in the files' order."""
    from matplotlib.ticker import FuncFormatter

    names = list(entries)
    values = [entries[n]["summary"][key] for n in names]
    ax.barh(range(len(names)), [v or 0 for v in values], color=[COLOURS.get(n, "#bcbd22") for n in names])
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=9, loc="left")
    top = max((v for v in values if v), default=1)
    ax.set_xlim(0, top * 1.18)  # room for the labels
    for y, (name, value) in enumerate(zip(names, values, strict=True)):
        label = fmt(value) if value is not None else "failed" if entries[name]["error"] else "errors in every round"
        ax.text((value or 0) + top * 0.01, y, label, va="center", fontsize=8)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: fmt(x) if x else "0"))
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)


def main() -> int:
    parser = argparse.ArgumentParser(description="Chart bench/load.py's or bench/ws.py's JSON results.")
    parser.add_argument("results", nargs="+", type=Path, help="JSON files they wrote (bench/results/)")
    parser.add_argument("-o", "--output", type=Path, default=BENCH_DIR / "results.png",
                        help="the PNG to write (default: bench/results.png)")
    args = parser.parse_args()
    scenarios, titles, environments = load(args.results)
    if not scenarios:
        raise SystemExit("no scenario in these files")
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    first = environments[0]
    settings = first["settings"]
    how = (f"{settings['workers']} workers per server, unpinned" if settings["workers"] > 1 else
           f"server on CPU {settings['server_cpu']}, load generator on CPU {settings['load_cpu']}")
    dates = ", ".join(sorted({e["date"][:16].replace("T", " ") for e in environments}))
    fig = plt.figure(figsize=(12, 0.8 + 2.6 * len(scenarios)), layout="constrained")
    fig.suptitle(f"cppcorn, {first['benchmark']}, {dates}\n{first['cpu_model']}, {first['cpus']} CPUs; {how}; "
                 f"{settings['rounds']} × {settings['duration']:g} s rounds, medians", fontsize=10)
    # A sub-figure per scenario: its caption over both of its panels.
    for subfig, (name, entries) in zip(fig.subfigures(len(scenarios), 1, squeeze=False)[:, 0], scenarios.items(),
                                       strict=True):
        subfig.suptitle(f"{name}: {titles[name]}", fontsize=10, fontweight="bold", x=0.01, ha="left")
        left, right = subfig.subplots(1, 2)
        draw_panel(left, entries, "rate", f"{first['rate_label']} (median, higher is better)", format_rate)
        draw_panel(right, entries, "cpu_us_per_op", f"server CPU µs/{first['op']} (median, lower is better)",
                   format_cpu)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
