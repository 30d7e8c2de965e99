#!/usr/bin/env python3
"""Writes docs/PERFORMANCE.md and docs/performance.svg from the results of
bench/run (bench/results/latest.json). Python 3 standard library only.

    python3 bench/report.py [--results FILE] [--doc FILE] [--svg FILE]

The document is generated: every figure, its command, the ratios against
the targets, and the chart come from the results file. The one hand-written
part, the analysis, is bench/analysis.md, included verbatim.
"""

import argparse
import html
import json
import os
import re

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)

ALGORITHMS = [
    "token_bucket",
    "gcra",
    "leaky_bucket",
    "fixed_window",
    "sliding_window_log",
    "sliding_window_counter",
]
SCENARIOS = ["hot", "allowing", "random"]
SCENARIO_TEXT = {
    "hot": "one hot key, 100/s: nearly every call denied",
    "allowing": "one hot key, 1,000,000/s (sliding window log: 100,000/s): every call admitted",
    "random": "100,000 keys, uniform, 100/s each: every call admitted",
}


# --- Formatting -------------------------------------------------------------


def fmt_int(v):
    return "—" if v is None else f"{v:,.0f}"


def fmt_num(v, digits=1):
    return "—" if v is None else f"{v:,.{digits}f}"


def fmt_rate(v):
    if v is None:
        return "—"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}"


def fmt_ratio(v):
    return "—" if v is None else f"{v:.2f}×"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def code(text):
    return "`" + text.replace("`", "'") + "`"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


def portable(cmd):
    """The command with the run's ports and script hashes as $PORT and $SHA."""
    cmd = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:$PORT", cmd)
    cmd = re.sub(r"(-p|resp_load\.py) \d+", r"\1 $PORT", cmd)
    return re.sub(r"\b[0-9a-f]{40}\b", "$SHA", cmd)


def commands_block(pairs):
    """A collapsible list of `label: command` lines."""
    pairs = [(label, cmd) for label, cmd in pairs if cmd]
    if not pairs:
        return ""
    lines = [
        "<details><summary>Commands</summary>",
        "",
        "`$PORT` is the port of the server the run started, `$SHA` the "
        "`SCRIPT LOAD` hash of the script named.",
        "",
        "```sh",
    ]
    for label, cmd in pairs:
        lines.append(f"# {label}")
        lines.append(portable(cmd))
    lines += ["```", "", "</details>"]
    return "\n".join(lines)


# --- Reading the results -------------------------------------------------------


class Results:
    def __init__(self, data):
        self.data = data
        self.records = data.get("records", [])

    def area(self, name):
        return [r for r in self.records if r.get("area") == name]

    def ok(self, rec):
        return rec is not None and "error" not in rec and "skipped" not in rec

    def build(self, name):
        for r in self.area("build"):
            if r.get("name") == name and r.get("status") == "ok":
                return r.get("version")
        return None

    def lua(self, script, scenario):
        for r in self.area("lua"):
            if r.get("script") == script and r.get("scenario") == scenario:
                return r
        return None

    def lua_value(self, script, scenario, field):
        r = self.lua(script, scenario)
        return r.get(field) if self.ok(r) else None

    def sluice_bench(self, target, algorithm, scenario):
        for r in self.area("sluice-bench"):
            if (r.get("target"), r.get("algorithm"), r.get("scenario")) == (
                target,
                algorithm,
                scenario,
            ):
                return r
        return None

    def sluice_bench_value(self, target, algorithm, scenario, field):
        r = self.sluice_bench(target, algorithm, scenario)
        if not self.ok(r):
            return None
        return r["result"].get(field)

    def http(self, scenario):
        for r in self.area("http"):
            if r.get("scenario") == scenario:
                return r
        return None

    def http_value(self, scenario, field):
        r = self.http(scenario)
        return r.get(field) if self.ok(r) else None

    def criterion(self, group, bench_id):
        for r in self.area("criterion"):
            if r.get("group") == group and r.get("id") == bench_id:
                return r
        return None

    def memory(self, store):
        for r in self.area("memory"):
            if r.get("store") == store:
                return r
        return None

    def memory_value(self, store):
        r = self.memory(store)
        return r.get("bytes_per_key") if self.ok(r) else None

    def problems(self):
        return [r for r in self.records if "error" in r or "skipped" in r]


# --- Targets -------------------------------------------------------------------


class Target:
    """One target: a measured ratio against a goal, higher or lower better."""

    def __init__(self, area, what, measured, value, goal, higher_is_better):
        self.area = area
        self.what = what
        self.measured = measured
        self.value = value
        self.goal = goal
        self.higher = higher_is_better

    @property
    def met(self):
        if self.value is None:
            return None
        return self.value >= self.goal if self.higher else self.value <= self.goal

    def goal_text(self, unit="×"):
        return ("≥ " if self.higher else "≤ ") + f"{self.goal:g}{unit}"

    def gap_text(self):
        if self.value is None:
            return "not measured"
        if self.met:
            if self.higher:
                return f"margin {100 * (self.value / self.goal - 1):.0f}%"
            return f"margin {100 * (1 - self.value / self.goal):.0f}%"
        # Far from the goal, a factor reads better than a percentage.
        if self.higher:
            factor = self.goal / self.value if self.value else float("inf")
            if factor >= 2:
                return f"needs ×{factor:.1f}"
            return f"needs +{100 * (factor - 1):.0f}%"
        factor = self.value / self.goal
        if factor >= 2:
            return f"needs ÷{factor:.1f}"
        return f"needs −{100 * (1 - 1 / factor):.0f}%"

    def mark(self):
        return {True: "✅", False: "❌", None: "—"}[self.met]


def targets(res):
    out = []
    # 1. The memory store against governor, ns per check (criterion).
    for keys in ("1key", "100k"):
        for threads in ("1thread", "2threads"):
            group = f"keyed/{keys}/{threads}"
            s, g = res.criterion(group, "sluice"), res.criterion(group, "governor")
            sv = s.get("ns_per_check") if res.ok(s) else None
            gv = g.get("ns_per_check") if res.ok(g) else None
            out.append(
                Target(
                    "memory store",
                    f"ns/check vs governor, {group}",
                    f"{fmt_num(sv)} vs {fmt_num(gv)} ns",
                    ratio(sv, gv),
                    1.0,
                    False,
                )
            )
    # 2. HTTP: sluice serve (memory) against the bare echo and throttlecrab.
    sm = res.http_value("sluice-memory", "rps")
    echo = res.http_value("echo", "rps")
    tc = res.http_value("throttlecrab", "rps")
    out.append(
        Target(
            "HTTP",
            "`sluice serve` (memory) req/s vs bare axum JSON echo",
            f"{fmt_int(sm)} vs {fmt_int(echo)} req/s",
            ratio(sm, echo),
            0.9,
            True,
        )
    )
    out.append(
        Target(
            "HTTP",
            "`sluice serve` (memory) req/s vs throttlecrab-server",
            f"{fmt_int(sm)} vs {fmt_int(tc)} req/s",
            ratio(sm, tc),
            1.2,
            True,
        )
    )
    smp = res.http_value("sluice-memory", "p99_ms")
    tcp = res.http_value("throttlecrab", "p99_ms")
    out.append(
        Target(
            "HTTP",
            "`sluice serve` (memory) p99 vs throttlecrab-server (no worse)",
            f"{fmt_num(smp, 2)} vs {fmt_num(tcp, 2)} ms",
            ratio(smp, tcp),
            1.0,
            False,
        )
    )
    # 3. The Redis path: sluice bench (64 in flight) against redis-benchmark.
    for algorithm in ALGORITHMS:
        for scenario in SCENARIOS:
            sb = res.sluice_bench_value("redis", algorithm, scenario, "decisions_per_sec")
            rb = res.lua_value(f"sluice:{algorithm}", scenario, "rps")
            if sb is None and rb is None:
                continue
            out.append(
                Target(
                    "Redis path",
                    f"`sluice bench` {algorithm} {scenario} vs redis-benchmark of its script (-P 16)",
                    f"{fmt_int(sb)} vs {fmt_int(rb)} /s",
                    ratio(sb, rb),
                    1.0,
                    True,
                )
            )
    for algorithm in ("token_bucket", "gcra"):
        for scenario, goal in (("random", 1.0), ("hot", 0.6)):
            sb = res.sluice_bench_value("redis", algorithm, scenario, "decisions_per_sec")
            cell = res.lua_value("redis-cell", scenario, "rps")
            if sb is None and cell is None:
                continue
            out.append(
                Target(
                    "Redis path",
                    f"`sluice bench` {algorithm} {scenario} vs redis-cell `CL.THROTTLE` {scenario}",
                    f"{fmt_int(sb)} vs {fmt_int(cell)} /s",
                    ratio(sb, cell),
                    goal,
                    True,
                )
            )
    # 4. Redis CPU of Sluice's script per algorithm against the careful GCRA.
    for algorithm in ALGORITHMS:
        for scenario in SCENARIOS:
            s = res.lua_value(f"sluice:{algorithm}", scenario, "redis_usec_per_call")
            ref = res.lua_value("gcra_reference", scenario, "redis_usec_per_call")
            if s is None and res.lua(f"sluice:{algorithm}", scenario) is None:
                continue
            out.append(
                Target(
                    "Redis CPU",
                    f"Sluice's script, {algorithm} {scenario}: µs/call vs careful GCRA",
                    f"{fmt_num(s, 2)} vs {fmt_num(ref, 2)} µs",
                    ratio(s, ref),
                    0.8,
                    False,
                )
            )
    # 5. Resident bytes per key.
    mem = res.memory_value("sluice-memory")
    tcm = res.memory_value("throttlecrab-server")
    keys = (res.memory("sluice-memory") or {}).get("keys")
    t = Target(
        "memory",
        f"memory store bytes per key at {fmt_int(keys)} keys",
        f"{fmt_num(mem)} B",
        mem,
        100,
        False,
    )
    t.unit = " B"
    out.append(t)
    out.append(
        Target(
            "memory",
            "memory store bytes per key vs throttlecrab-server's",
            f"{fmt_num(mem)} vs {fmt_num(tcm)} B",
            ratio(mem, tcm),
            0.75,
            False,
        )
    )
    return out


# --- The chart ------------------------------------------------------------------

# Bar colours: Sluice (library or server), Sluice's script under
# redis-benchmark, everything else.
COLOURS = {"sluice": "#2b6cb0", "script": "#90cdf4", "other": "#a0aec0"}


def chart_panels(res):
    """Panels of bars: (label, value, note, kind, group)."""
    panels = []

    bars = []
    for scenario, label, group in (
        ("echo", "bare axum JSON echo", 1),
        ("sluice-memory", "sluice serve, memory", 1),
        ("sluice-memory-denying", "sluice serve, memory, denying", 1),
        ("sluice-redis", "sluice serve, Redis", 1),
        ("throttlecrab", "throttlecrab-server", 1),
        ("echo-pipelined", "echo, pipelined ×16", 2),
        ("sluice-memory-pipelined", "sluice serve, memory, pipelined ×16", 2),
    ):
        rps = res.http_value(scenario, "rps")
        if rps is not None:
            p99 = res.http_value(scenario, "p99_ms")
            kind = "sluice" if "sluice" in scenario else "other"
            bars.append((label, rps, f"{fmt_rate(rps)} req/s · p99 {p99:.2f} ms", kind, group))
    if bars:
        panels.append(("HTTP: wrk -t2 -c64, requests per second", bars))

    bars = []
    for scenario in SCENARIOS:
        for algorithm in ("token_bucket", "gcra"):
            v = res.sluice_bench_value("redis", algorithm, scenario, "decisions_per_sec")
            if v is not None:
                p99 = res.sluice_bench_value("redis", algorithm, scenario, "p99_us")
                note = f"{fmt_rate(v)}/s · p99 {p99 / 1000:.2f} ms"
                bars.append((f"{scenario}: sluice bench, {algorithm}", v, note, "sluice", scenario))
        for algorithm in ("token_bucket", "gcra"):
            v = res.lua_value(f"sluice:{algorithm}", scenario, "rps")
            if v is not None:
                p99 = res.lua_value(f"sluice:{algorithm}", scenario, "p99_ms")
                note = f"{fmt_rate(v)}/s · p99 {p99:.2f} ms"
                bars.append(
                    (f"{scenario}: Sluice's script, {algorithm}", v, note, "script", scenario)
                )
        for script, label in (
            ("gcra_reference", "careful GCRA"),
            ("redis-cell", "redis-cell"),
            ("article", "the article's script"),
        ):
            v = res.lua_value(script, scenario, "rps")
            if v is not None:
                p99 = res.lua_value(script, scenario, "p99_ms")
                note = f"{fmt_rate(v)}/s · p99 {p99:.2f} ms"
                bars.append((f"{scenario}: {label}", v, note, "other", scenario))
    for algorithm in ("token_bucket", "gcra"):
        v = res.sluice_bench_value("cluster", algorithm, "random", "decisions_per_sec")
        if v is not None:
            p99 = res.sluice_bench_value("cluster", algorithm, "random", "p99_us")
            note = f"{fmt_rate(v)}/s · p99 {p99 / 1000:.2f} ms"
            bars.append((f"cluster, random: sluice bench, {algorithm}", v, note, "sluice", "cluster"))
    if bars:
        panels.append(
            (
                "Redis: decisions per second (sluice bench: 64 in flight; scripts: redis-benchmark -c 50 -P 16)",
                bars,
            )
        )

    bars = []
    for keys in ("1key", "100k"):
        for threads in ("1thread", "2threads"):
            group = f"keyed/{keys}/{threads}"
            for bench_id in ("sluice", "governor"):
                r = res.criterion(group, bench_id)
                if res.ok(r):
                    v = r["ns_per_check"]
                    kind = "sluice" if bench_id == "sluice" else "other"
                    bars.append((f"{group}: {bench_id}", v, f"{v:.0f} ns/check", kind, group))
    if bars:
        panels.append(("Memory store vs governor: ns per check (criterion; shorter is better)", bars))

    bars = []
    for store, label, group in (
        ("sluice-memory", "Sluice memory store", 1),
        ("governor-keyed", "governor keyed", 1),
        ("throttlecrab-server", "throttlecrab-server", 1),
        ("redis sluice:token_bucket", "Redis: Sluice token_bucket", 2),
        ("redis sluice:gcra", "Redis: Sluice gcra", 2),
        ("redis gcra_reference", "Redis: careful GCRA", 2),
        ("redis redis-cell", "Redis: redis-cell", 2),
    ):
        v = res.memory_value(store)
        if v is not None:
            kind = "sluice" if "Sluice" in label else "other"
            bars.append((label, v, f"{v:.0f} B/key", kind, group))
    if bars:
        panels.append(("Resident bytes per key (shorter is better)", bars))
    return panels


def svg_chart(res, title):
    panels = chart_panels(res)
    width, label_w, bar_w, bar_h, gap = 980, 330, 420, 16, 5
    parts = []
    # The legend, under the title.
    x = 10
    for kind, text in (
        ("sluice", "Sluice"),
        ("script", "Sluice's script under redis-benchmark"),
        ("other", "others"),
    ):
        parts.append(f'<rect x="{x}" y="32" width="12" height="12" fill="{COLOURS[kind]}"/>')
        parts.append(f'<text x="{x + 16}" y="42" class="label">{html.escape(text)}</text>')
        x += 24 + 6.5 * len(text)
    parts.append(
        f'<text x="{x + 10}" y="42" class="label">labels: throughput (or size) and p99 latency</text>'
    )
    y = 72
    for panel_title, bars in panels:
        parts.append(f'<text x="10" y="{y}" class="panel">{html.escape(panel_title)}</text>')
        y += 10
        top = max(v for _, v, _, _, _ in bars) or 1
        previous = None
        for label, value, note, kind, group in bars:
            if previous is not None and group != previous:
                y += 6
            previous = group
            w = max(1.0, bar_w * value / top)
            parts.append(
                f'<text x="{label_w - 8}" y="{y + bar_h - 4}" class="label" '
                f'text-anchor="end">{html.escape(label)}</text>'
            )
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{COLOURS[kind]}"/>'
            )
            parts.append(
                f'<text x="{label_w + w + 6:.1f}" y="{y + bar_h - 4}" class="value">{html.escape(note)}</text>'
            )
            y += bar_h + gap
        y += 30
    if not panels:
        parts.append(f'<text x="10" y="{y}" class="label">No results.</text>')
        y += 30
    height = y
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">\n'
        "<style>.title{font-size:16px;font-weight:bold}.panel{font-size:13px;font-weight:bold}"
        ".label{font-size:11px}.value{font-size:11px;fill:#2d3748}</style>\n"
        f'<rect width="{width}" height="{height}" fill="white"/>\n'
        f'<text x="10" y="20" class="title">{html.escape(title)}</text>\n'
    )
    return head + "\n".join(parts) + "\n</svg>\n"


# --- The document -------------------------------------------------------------------


def machine_section(res):
    d = res.data
    m = d.get("machine", {})
    mem = m.get("memory_bytes")
    rows = [
        ("CPU", f"{m.get('cpu')} — {m.get('nproc')} cores (`nproc`)"),
        ("memory", f"{mem / 2**30:.1f} GiB" if mem else "—"),
        ("OS, kernel", f"{m.get('os')}, Linux {m.get('kernel')}"),
        ("redis-server", m.get("redis_server")),
        ("redis-benchmark", m.get("redis_benchmark")),
        ("wrk", m.get("wrk")),
        ("rustc", m.get("rustc")),
        ("redis-cell", res.build("redis-cell") or "not built"),
        ("throttlecrab-server", res.build("throttlecrab-server") or "not built"),
        (
            "Sluice",
            f"commit {m.get('git_commit')}" + (" with uncommitted changes" if m.get("git_dirty") else ""),
        ),
        ("run", f"`bench/run{' --quick' if d.get('mode') == 'quick' else ''}`, started {d.get('started')}, {d.get('seconds')} s"),
    ]
    return table(["", ""], [(a, b if b else "—") for a, b in rows])


def targets_section(res):
    rows = []
    for t in targets(res):
        unit = getattr(t, "unit", "×")
        value = "—" if t.value is None else (f"{t.value:.1f}{unit}" if unit != "×" else fmt_ratio(t.value))
        rows.append((t.mark(), t.area, t.what, t.measured, value, t.goal_text(unit), t.gap_text()))
    met = sum(1 for t in targets(res) if t.met)
    total = sum(1 for t in targets(res) if t.met is not None)
    return (
        f"{met} of {total} measured targets met.\n\n"
        + table(["", "area", "target", "measured", "ratio", "goal", "gap"], rows)
    )


def criterion_section(res):
    recs = res.area("criterion")
    if not recs:
        return "Not run."
    skipped = [r for r in recs if "skipped" in r]
    if skipped:
        return f"Skipped: {skipped[0]['skipped']}.\n\nCommand: {code(skipped[0].get('command', ''))}"
    rows = []
    for keys in ("1key", "100k"):
        for threads in ("1thread", "2threads"):
            group = f"keyed/{keys}/{threads}"
            s, g = res.criterion(group, "sluice"), res.criterion(group, "governor")
            sv = s.get("ns_per_check") if res.ok(s) else None
            gv = g.get("ns_per_check") if res.ok(g) else None
            rows.append((code(group), fmt_num(sv), fmt_num(gv), fmt_ratio(ratio(sv, gv))))
    command = next((r.get("command") for r in recs if r.get("command")), "")
    return (
        "A `sluice::Limiter` on the memory store against governor's keyed limiter, "
        "same `String` keys, every check admitted; the mean of criterion's estimate "
        "(`target/criterion/<group>/<id>/new/estimates.json`).\n\n"
        + table(["group", "Sluice ns/check", "governor ns/check", "Sluice / governor"], rows)
        + "\n\nCommand: "
        + code(command)
    )


def lua_section(res):
    if not res.area("lua"):
        return "Not run."
    out = [
        "Each script on the same redis-server, one decision per call, "
        "`redis-benchmark -c 50 -P 16` (the client pipelines 16 calls per "
        "connection: this is the ceiling of the script, not of a client). The "
        "Redis CPU is `usec_per_call` of the command in `INFO commandstats` "
        "(reset before each run): the time Redis spends per call, script "
        "and its `redis.call`s included. Keys look like Sluice's, "
        "`sluice:{user-<12 digits>}:bench:0badc0de`; the database is emptied "
        "before each script. Sluice's library is called through the bench "
        "entry point described in `bench/lib/sluice_lua.sh` (the same "
        "library and `run`, one table lookup more). The request count of "
        "each run is sized from a 2,000-request probe so that it lasts "
        "about the same time.",
        "",
    ]
    scripts = [f"sluice:{a}" for a in ALGORITHMS] + ["gcra_reference", "article", "redis-cell"]
    names = {
        "gcra_reference": "careful GCRA (`bench/lua/gcra_reference.lua`)",
        "article": "the article's script (`bench/lua/article.lua`)",
        "redis-cell": "redis-cell `CL.THROTTLE`",
    }
    for scenario in SCENARIOS:
        rows, cmds = [], []
        ref = res.lua_value("gcra_reference", scenario, "redis_usec_per_call")
        for script in scripts:
            r = res.lua(script, scenario)
            if r is None:
                continue
            name = names.get(script) or f"Sluice {script.split(':', 1)[-1]}"
            if not res.ok(r):
                rows.append((name, "failed", "", "", "", ""))
                cmds.append((f"{name} (failed: {r.get('error')})", r.get("command")))
                continue
            usec = r.get("redis_usec_per_call")
            rows.append(
                (
                    name,
                    fmt_int(r.get("rps")),
                    fmt_num(r.get("p50_ms"), 2),
                    fmt_num(r.get("p99_ms"), 2),
                    fmt_num(usec, 2),
                    fmt_ratio(ratio(usec, ref)),
                )
            )
            cmds.append((name, r.get("command")))
        if not rows:
            continue
        out.append(f"**{scenario}**: {SCENARIO_TEXT[scenario]}.\n")
        out.append(
            table(
                ["script", "calls/s", "p50 ms", "p99 ms", "Redis µs/call", "CPU vs careful GCRA"],
                rows,
            )
        )
        out.append("")
        out.append(commands_block(cmds))
        out.append("")
    return "\n".join(out)


def sluice_bench_section(res):
    recs = res.area("sluice-bench")
    if not recs:
        return "Not run."
    rows, cmds = [], []
    for target in ("redis", "cluster"):
        for algorithm in ALGORITHMS:
            for scenario in SCENARIOS:
                r = res.sluice_bench(target, algorithm, scenario)
                if r is None:
                    continue
                label = f"{target} {algorithm} {scenario}"
                if not res.ok(r):
                    rows.append((target, algorithm, scenario, "failed", "", "", "", "", "", ""))
                    cmds.append((f"{label} (failed: {r.get('error')})", r.get("command")))
                    continue
                x = r["result"]
                dps = x.get("decisions_per_sec")
                per_decision = None
                if r.get("redis_usec") and x.get("decisions"):
                    per_decision = r["redis_usec"] / x["decisions"]
                per_call = (
                    x.get("decisions") / r["redis_calls"] if r.get("redis_calls") else None
                )
                vs = ratio(dps, res.lua_value(f"sluice:{algorithm}", scenario, "rps")) if target == "redis" else None
                rows.append(
                    (
                        target,
                        algorithm,
                        scenario,
                        fmt_int(dps),
                        fmt_int(x.get("p50_us")),
                        fmt_int(x.get("p99_us")),
                        f"{x.get('allowed_ratio', 0):.2f}",
                        fmt_int(x.get("errors")),
                        "—" if per_decision is None else f"{per_decision:.2f} ({per_call:.1f}/call)",
                        fmt_ratio(vs),
                    )
                )
                cmds.append((label, r.get("command")))
    return (
        "The library itself (no HTTP) deciding on Redis: `sluice bench`, 64 "
        "decisions in flight, the same quotas and key counts as the "
        "redis-benchmark runs above, on the same redis-server; then on a "
        "three-master Redis Cluster started for the run. Redis µs/decision is "
        "the library's command time in `INFO commandstats` over the decisions "
        "made (decisions per call in brackets: concurrent decisions share a call).\n\n"
        + table(
            [
                "Redis",
                "algorithm",
                "scenario",
                "decisions/s",
                "p50 µs",
                "p99 µs",
                "allowed",
                "errors",
                "Redis µs/decision",
                "vs redis-benchmark of its script",
            ],
            rows,
        )
        + "\n\n"
        + commands_block(cmds)
    )


def http_section(res):
    recs = res.area("http")
    if not recs:
        return "Not run."
    echo = res.http_value("echo", "rps")
    rows, cmds = [], []
    names = {
        "echo": "bare axum JSON echo (`examples/json_echo.rs`)",
        "echo-pipelined": "bare axum JSON echo, 16 pipelined",
        "sluice-memory": "`sluice serve`, memory store",
        "sluice-memory-pipelined": "`sluice serve`, memory store, 16 pipelined",
        "sluice-memory-denying": "`sluice serve`, memory store, denying (429)",
        "sluice-redis": "`sluice serve`, Redis store",
        "throttlecrab": "throttlecrab-server (HTTP/JSON)",
    }
    for scenario in names:
        r = res.http(scenario)
        if r is None:
            continue
        if not res.ok(r):
            rows.append((names[scenario], "failed", "", "", "", ""))
            cmds.append((f"{scenario} (failed: {r.get('error')})", r.get("command")))
            continue
        rows.append(
            (
                names[scenario],
                fmt_int(r.get("rps")),
                fmt_num(r.get("p50_ms"), 2),
                fmt_num(r.get("p99_ms"), 2),
                fmt_int(r.get("non_2xx")),
                fmt_ratio(ratio(r.get("rps"), echo)),
            )
        )
        cmds.append((scenario, r.get("command")))
    return (
        "`wrk -t2 -c64 --latency` on the same two cores as the server (the "
        "client's CPU is part of every figure alike). Bodies name one of "
        "10,000 keys, in a random order formatted once per thread "
        "(`bench/wrk/post.lua`); Sluice's policy `bench` admits every "
        "request, `tight` (10 per 60 s) denies nearly all. The pipelined runs "
        "write 16 requests at a time per connection.\n\n"
        + table(["server", "req/s", "p50 ms", "p99 ms", "non-2xx", "vs bare echo"], rows)
        + "\n\n"
        + commands_block(cmds)
    )


def memory_section(res):
    recs = res.area("memory")
    if not recs:
        return "Not run."
    rows, cmds = [], []
    names = {
        "sluice-memory": "Sluice memory store",
        "governor-keyed": "governor keyed limiter",
        "throttlecrab-server": "throttlecrab-server (VmRSS)",
    }
    for r in recs:
        store = r.get("store", "")
        name = names.get(store)
        if name is None and store.startswith("redis "):
            script = store.split(" ", 1)[1]
            name = "Redis, " + {
                "gcra_reference": "careful GCRA",
                "redis-cell": "redis-cell",
            }.get(script, f"Sluice {script.split(':', 1)[-1]}")
        name = name or store
        if "skipped" in r:
            rows.append((name, "skipped", "", r["skipped"]))
        elif "error" in r:
            rows.append((name, "failed", "", r["error"]))
        else:
            how = {
                "sluice-memory": "VmRSS of its own process before/after",
                "governor-keyed": "VmRSS of its own process before/after",
                "throttlecrab-server": "VmRSS of the server before/after, RESP `THROTTLE` per key",
            }.get(store, "`INFO memory` used_memory before/after ÷ `DBSIZE`")
            rows.append((name, fmt_int(r.get("keys")), fmt_num(r.get("bytes_per_key")), how))
        if r.get("command"):
            cmds.append((name, r.get("command")))
    return (
        "Resident bytes per key after one decision on each of N distinct "
        "keys (12-byte client keys, `user-0000001`…; in Redis the whole "
        "key looks like Sluice's, `sluice:{user-0000001}:bench:0badc0de`), "
        "with a quota of 10 per hour so no key expires during the run.\n\n"
        + table(["store", "keys", "bytes/key", "how"], rows)
        + "\n\n"
        + commands_block(cmds)
    )


def problems_section(res):
    problems = res.problems()
    if not problems:
        return "None."
    lines = []
    for r in problems:
        what = " ".join(
            str(r[k])
            for k in ("area", "name", "script", "target", "algorithm", "scenario", "store", "group", "id")
            if k in r
        )
        lines.append(f"- **{what}**: {r.get('error') or r.get('skipped')}")
    return "\n".join(lines)


def document(res, svg_name):
    d = res.data
    analysis_path = os.path.join(BENCH, "analysis.md")
    try:
        with open(analysis_path) as f:
            analysis = f.read().strip()
    except OSError:
        analysis = "_bench/analysis.md is missing._"
    quick = d.get("mode") == "quick"
    parts = [
        "# Performance",
        "",
        "<!-- Generated by bench/report.py from bench/results/latest.json: "
        "edit bench/analysis.md or the scripts under bench/, not this file. -->",
        "",
        "Every figure below comes from one run of `bench/run` on the machine "
        "described, with the command that produced it. The machine is shared "
        "(2 cores; builds may run beside the benchmarks), so absolute numbers "
        "are noisy: only ratios within one run are meant to be compared.",
        "",
    ]
    if quick:
        parts += [
            "> **This is a `--quick` run** (short runs, fewer keys): a smoke "
            "test of the benchmarks, not figures to quote.",
            "",
        ]
    parts += [
        "## Reproduce",
        "",
        "```sh",
        "bench/run          # everything: builds, runs, writes this file (about 10-15 min)",
        "bench/run --quick  # a smoke test (a few minutes)",
        "```",
        "",
        "It needs redis-server, redis-cli and redis-benchmark (7.x), wrk, "
        "python3 and cargo; it builds `sluice`, `json-echo`, redis-cell (from "
        "its crates.io package) and throttlecrab-server (`cargo install`) "
        "into `bench/.cache/`, starts its own redis-server (redis-cell "
        "loaded) and three-master cluster on free loopback ports, and stops "
        "them when it ends. Raw results: `bench/results/latest.json`.",
        "",
        "## The machine",
        "",
        machine_section(res),
        "",
        "## Targets",
        "",
        "Ratios are Sluice's figure over the other's, from the same run.",
        "",
        targets_section(res),
        "",
        f"![Throughput and p99 by scenario]({svg_name})",
        "",
        "## The memory store against governor (criterion)",
        "",
        criterion_section(res),
        "",
        "## Redis: the scripts' ceiling (redis-benchmark)",
        "",
        lua_section(res),
        "",
        "## Redis: the library (`sluice bench`)",
        "",
        sluice_bench_section(res),
        "",
        "## HTTP (wrk)",
        "",
        http_section(res),
        "",
        "## Resident memory per key",
        "",
        memory_section(res),
        "",
        "## What did not run",
        "",
        problems_section(res),
        "",
        "## Analysis",
        "",
        "<!-- From bench/analysis.md, by hand. -->",
        "",
        analysis,
        "",
    ]
    return "\n".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=os.path.join(BENCH, "results", "latest.json"))
    parser.add_argument("--doc", default=os.path.join(ROOT, "docs", "PERFORMANCE.md"))
    parser.add_argument("--svg", default=os.path.join(ROOT, "docs", "performance.svg"))
    args = parser.parse_args()
    with open(args.results) as f:
        res = Results(json.load(f))
    os.makedirs(os.path.dirname(args.doc), exist_ok=True)
    svg_name = os.path.relpath(args.svg, os.path.dirname(args.doc))
    started = res.data.get("started", "")
    title = "Sluice performance" + (f", {started[:10]}" if started else "")
    if res.data.get("mode") == "quick":
        title += " (quick run)"
    with open(args.svg, "w") as f:
        f.write(svg_chart(res, title))
    with open(args.doc, "w") as f:
        f.write(document(res, svg_name))


if __name__ == "__main__":
    main()
