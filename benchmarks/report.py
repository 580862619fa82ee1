"""Write the results: ``results.json`` (raw), ``results.md`` (tables) and ``results.png``.

Also records the environment the figures were taken in: CPU model, kernel, Python and the
versions of every server package.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

from benchmarks.servers import SERVERS
from benchmarks.workloads import HTTP_WORKLOADS

PACKAGES = (
    "corkweb", "socketify", "blacksheep", "granian", "starlette", "uvicorn", "sanic",
    "jinja2", "orjson", "uvloop", "httptools", "wsproto", "websockets",
)
# DESIGN.md §5's goals that are not CPU per request.
IDLE_CPU_GOAL = 0.0  # %
CONN_MEMORY_GOAL = 2.5  # KiB per idle keep-alive connection


def environment() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
        wrk_version = out.split()[1]
    except (OSError, IndexError):
        wrk_version = None
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_version,
        "packages": versions,
        "jinja_page_render_us": page_render_us(),
    }


def page_render_us() -> float | None:
    """What rendering the benchmark page alone costs here, in µs (best of 5 runs)."""
    try:
        import timeit

        import jinja2

        from benchmarks.apps.common import ROWS, TEMPLATE, TEMPLATES_DIR, TITLE
    except ImportError:
        return None
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=jinja2.select_autoescape()
    )
    t = env.get_template(TEMPLATE)
    runs = timeit.repeat(lambda: t.render(rows=ROWS, title=TITLE), number=500, repeat=5)
    return min(runs) / 500 * 1e6


def write(results: dict, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "results.json", folder / "results.md"]
    paths[0].write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    paths[1].write_text(markdown(results))
    png = plot(results, folder / "results.png")
    if png:
        paths.append(png)
    return paths


def _servers(results: dict) -> list[str]:
    return [name for name in SERVERS if name in results["servers"]]


def _workloads(results: dict, names: list[str]) -> list:
    """The workloads that at least one server has a result for, in the usual order."""
    servers = results["servers"]
    return [
        w for w in HTTP_WORKLOADS.values() if any(w.name in servers[n]["workloads"] for n in names)
    ]


def _label(name: str) -> str:
    return SERVERS[name].label if name in SERVERS else name


def _cell(entry: dict | None, key, fmt: str) -> str:
    if entry is None:
        return "—"
    if "error" in entry:
        return "failed"
    value = _get(entry, key)
    return "—" if value is None else format(value, fmt)


def _get(entry: dict | None, key) -> float | None:
    if not entry or "error" in entry:
        return None
    value = entry
    for k in key if isinstance(key, tuple) else (key,):
        value = value.get(k) if isinstance(value, dict) else None
    return value


def _ratio(results: dict, workload: str, key, peers: list[str], higher: bool) -> str:
    servers = results["servers"]
    mine = _get(servers["corkweb"]["workloads"].get(workload), key)
    theirs = [(v, n) for n in peers if (v := _get(servers[n]["workloads"].get(workload), key))]
    if not mine or not theirs:
        return "—"
    value, best = max(theirs) if higher else min(theirs)
    return f"{mine / value:.2f} ({_label(best)})"


def _spread(entry: dict | None, fmt: str) -> str:
    """`` (min–max)`` of the repeated runs' CPU per request, if there was more than one."""
    values = (entry or {}).get("repeats", {}).get("cpu_us") or []
    if len(values) < 2:
        return ""
    return f" ({format(min(values), fmt)}–{format(max(values), fmt)})"


def _short(error: str, limit: int = 100) -> str:
    """An error message fit for a table cell (the full text is in results.json)."""
    text = " ".join(error.split()).replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def markdown(results: dict) -> str:
    env, opts = results["environment"], results["options"]
    names = _servers(results)
    servers = results["servers"]
    out = ["# corkweb benchmark results\n"]
    out.append(
        f"{env['date']} · {env['cpu']} ({env['cpus']} CPUs) · Linux {env['kernel']} · "
        f"Python {env['python']} · wrk {env['wrk'] or 'missing'} · load: "
        f"{opts['loadgen']}, {opts['connections']} connections, {opts['duration']} s per "
        f"workload after {opts['warmup']} s of warm-up · server pinned to CPU 0, client to "
        f"CPU 1.\n"
    )
    versions = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v)
    out.append(f"Versions: {versions}.\n")
    if env.get("jinja_page_render_us"):
        out.append(
            f"Rendering the Jinja page alone costs {env['jinja_page_render_us']:.1f} µs here "
            "(DESIGN.md §5 assumes ≈ 69 µs in its ≤ 90 µs goal).\n"
        )
    for name, reason in results.get("skipped", {}).items():
        out.append(f"- **{_label(name)} skipped**: {reason}\n")
    wls = _workloads(results, names)
    cork = "corkweb" in names

    def workload_table(title: str, key, fmt: str, higher=False) -> None:
        """Servers side by side; with corkweb and a peer, how corkweb compares with the
        best peer (its figure over theirs). CPU cells show the median and the range."""
        peers = [n for n in names if n not in ("corkweb", "floor")]
        compare = cork and bool(peers)
        header = ["workload", *(_label(n) for n in names)]
        if compare:
            header.append("corkweb ÷ best peer")
        rows = []
        for w in wls:
            cells = [_cell(servers[n]["workloads"].get(w.name), key, fmt) for n in names]
            if all(c in ("—", "failed") for c in cells):
                continue  # e.g. no latency for pipelined requests or WebSocket messages
            if key == "cpu_us":
                cells = [c + _spread(servers[n]["workloads"].get(w.name), fmt)
                         for c, n in zip(cells, names, strict=True)]
            row = [w.title, *cells]
            if compare:
                row.append(_ratio(results, w.name, key, peers, higher))
            rows.append(row)
        out.append(f"\n## {title}\n\n" + _table(header, rows))

    ratios = results.get("ratios", {})
    if ratios:
        rows = []
        for w in wls:
            for other, goal in (("socketify", w.goal_vs_socketify), ("floor", w.goal_vs_floor)):
                r = ratios.get(w.name, {}).get(other)
                if r is None and goal is None:
                    continue
                if r is None:
                    rows.append([w.title, _label(other), "—", "—", f"≤ {goal:g}", "—"])
                    continue
                figure = f"{r['median']:.2f}"
                spread = f"{r['min']:.2f}–{r['max']:.2f}"
                if goal is None:
                    rows.append([w.title, _label(other), figure, spread, "—", "—"])
                else:
                    met = "yes" if r["median"] <= goal else "**no**"
                    rows.append([w.title, _label(other), figure, spread, f"≤ {goal:g}", met])
        if rows:
            out.append(
                f"\n## corkweb's server CPU per request as a ratio (median of "
                f"{opts.get('repeat', 1)} runs; each run's ratio is taken within that run)\n\n"
                "These are DESIGN.md §5's goals; the absolute figures below are information.\n\n"
                + _table(["workload", "over", "ratio", "min–max", "goal", "met"], rows))

    if wls:
        workload_table("Server CPU µs per request (lower is better; median, min–max)",
                       "cpu_us", ".1f")
    def extra_table(key: str, title: str, columns: list[tuple[str, str, str]], goal=None) -> None:
        have = [n for n in names if key in servers[n]]
        if not have:
            return
        header = ["server", *(c[0] for c in columns)]
        rows = []
        for n in have:
            e = servers[n][key]
            if "error" in e:
                error = _short(e["error"])
                rows.append([_label(n), error] + [""] * (len(columns) - 1))
            else:
                rows.append([_label(n)] + [_cell(e, c[1], c[2]) for c in columns])
        text = f"\n## {title}\n\n" + _table(header, rows)
        if goal and "corkweb" in have and "error" not in servers["corkweb"][key]:
            text += "\n" + goal(servers["corkweb"][key]) + "\n"
        out.append(text)

    extra_table(
        "idle", f"Idle CPU ({opts['idle_seconds']} s with no traffic, after warm-up)",
        [("CPU %", "cpu_percent", ".2f")],
        lambda e: f"corkweb goal: {IDLE_CPU_GOAL:.1f} % — "
        + ("met" if e["cpu_percent"] <= 0.05 else "**not met**"),
    )
    extra_table(
        "conn-memory", "Memory per idle keep-alive connection",
        [("KiB per connection", "kib_per_connection", ".2f"), ("connections held", "opened", "d"),
         ("still open when measured", "open_at_measure", "d")],
        lambda e: f"corkweb goal: ≤ {CONN_MEMORY_GOAL} KiB — "
        + ("met" if e["kib_per_connection"] <= CONN_MEMORY_GOAL else "**not met**"),
    )
    extra_table(
        "million", f"RSS over {opts.get('million_requests', 1_000_000):,} plaintext requests",
        [("requests", "requests", ",d"), ("RSS before (MiB)", "rss_before_mib", ".1f"),
         ("RSS after (MiB)", "rss_after_mib", ".1f"), ("growth (KiB)", "growth_kib", ",.0f"),
         ("growth after the first 10 s (KiB)", "growth_after_first_slice_kib", ",.0f")],
        lambda e: "corkweb goal: no memory growth — "
        + ("met" if e["growth_after_first_slice_kib"] <= 1024
           else "**not met** (more than 1 MiB after the first 10 s)"),
    )
    out.append(
        "\nMethod: see `benchmarks/README.md`. Figures vary from run to run by a few per cent;"
        " compare servers within one run.\n"
    )
    return "\n".join(out)


def plot(results: dict, path: Path) -> Path | None:
    """Grouped bars: server CPU µs per request (log scale) and requests/s per workload."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return None
    names = _servers(results)
    servers = results["servers"]
    wls = _workloads(results, names)
    values = [servers[n]["workloads"].get(w.name, {}).get("rps") for n in names for w in wls]
    if not any(values):
        return None  # nothing succeeded: nothing to draw
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 1.4 * len(wls) + 2), 9))
    width = 0.8 / len(names)
    for ax, key, title, log in (
        (axes[0], "cpu_us", "server CPU µs per request (lower is better)", True),
        (axes[1], "rps", "requests (messages) per second", True),
    ):
        for i, n in enumerate(names):
            values = [servers[n]["workloads"].get(w.name, {}).get(key) or 0 for w in wls]
            xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(wls))]
            ax.bar(xs, values, width, label=_label(n))
        ax.set_xticks(range(len(wls)), [w.title for w in wls], rotation=20, ha="right", fontsize=8)
        ax.set_title(title)
        if log:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"corkweb vs peers — {results['environment']['cpu']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
