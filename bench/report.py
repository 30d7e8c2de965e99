#!/usr/bin/env python3
"""Writes docs/PERFORMANCE.md and docs/performance.svg from the results of
bench/run (bench/results/latest.json). Python 3 standard library only.

    python3 bench/report.py [--results FILE] [--doc FILE] [--svg FILE]

The document is generated: every figure, its command, the ratios against
the targets, and the chart come from the results file. The one hand-written
part, the analysis, is bench/analysis.md, included verbatim. The results
are not committed (bench/results/ is ignored): to regenerate the published
report, keep the results file of the run it came from and pass it with
--results.
"""

import argparse
import html
import itertools
import json
import os
import re

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)

# The algorithms are not listed here: each result names its own, and
# `Results.algorithms` reads them from the results file.
SCENARIOS = ["hot", "allowing", "random"]
# The two algorithms the chart and the redis-cell targets single out.
FEATURED = ("token_bucket", "gcra")
# The criterion groups of crates/sluice/benches (the memory store against
# governor), in the order the report shows them.
CRITERION_GROUPS = [
    f"keyed/{keys}/{threads}" for keys in ("1key", "100k") for threads in ("1thread", "2threads")
]
# The scenarios of the module's targets against redis-cell (issue 15).
MODULE_TARGET_SCENARIOS = ["random", "hot"]
# The Redis paths of `sluice bench --redis-path`, in the order shown.
MODULE_PATHS = {
    "module": "module (`SLUICE.CALL`)",
    "function": "Function (`FCALL`)",
    "script": "script (`EVALSHA`)",
}
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

    def find(self, area, **fields):
        """The first record of AREA whose fields have these values, or None."""
        for r in self.area(area):
            if all(r.get(k) == v for k, v in fields.items()):
                return r
        return None

    def value(self, rec, field):
        """FIELD of a record that ran without error (`a.b` reads a nested
        object), else None."""
        if not self.ok(rec):
            return None
        for name in field.split("."):
            rec = rec.get(name) if isinstance(rec, dict) else None
        return rec

    @property
    def algorithms(self):
        """The algorithms the run measured: those its `algorithms` lists (in
        the library's order; results from before it was written have none),
        then any other a record names, in the order it ran them: `algorithm`
        (sluice bench), `sluice:NAME` as the script (redis-benchmark) or
        `redis sluice:NAME` as the store (memory)."""
        names = list(self.data.get("algorithms", []))
        for r in self.records:
            name = r.get("algorithm")
            for field in ("script", "store"):
                m = re.search(r"(?:^| )sluice:(\w+)$", str(r.get(field, "")))
                name = name or (m and m.group(1))
            if name and name not in names:
                names.append(name)
        return names

    def build(self, name):
        for r in self.area("build"):
            if r.get("name") == name and r.get("status") == "ok":
                return r.get("version")
        return None

    def lua(self, script, scenario):
        return self.find("lua", script=script, scenario=scenario)

    def lua_value(self, script, scenario, field):
        return self.value(self.lua(script, scenario), field)

    def sluice_bench(self, target, algorithm, scenario):
        return self.find("sluice-bench", target=target, algorithm=algorithm, scenario=scenario)

    def sluice_bench_value(self, target, algorithm, scenario, field):
        return self.value(self.sluice_bench(target, algorithm, scenario), "result." + field)

    def http(self, scenario):
        return self.find("http", scenario=scenario)

    def http_value(self, scenario, field):
        return self.value(self.http(scenario), field)

    def criterion(self, group, bench_id):
        return self.find("criterion", group=group, id=bench_id)

    def memory(self, store):
        return self.find("memory", store=store)

    def memory_value(self, store):
        return self.value(self.memory(store), "bytes_per_key")

    def problems(self):
        return [r for r in self.records if "error" in r or "skipped" in r]


# --- Targets -------------------------------------------------------------------

# Every target, one record each, evaluated by `targets` below. A record is
# repeated once per binding of `each` (a function of the results, since the
# algorithms come from them), and `{name}` in its strings is filled from the
# binding. Its fields:
#   area, what       the table's first two columns
#   ours, theirs     figures, as (area, {field: value}, field to read) of a
#                    record; the ratio is ours / theirs. Without `theirs`,
#                    the target is ours itself against the goal, in `unit`.
#   unit, digits     how the figures are shown (digits None: an integer)
#   goal, better     the goal of the ratio (or a binding's `goal`), and
#                    whether "higher" or "lower" is better
#   shown            "always"; "if either measured" (ours or theirs has a
#                    value); "if ours ran" (ours has a record, failed or not)
#   labels           more `{name}`s for `what`, read from records as figures
#                    are, whether or not those records ran without error
TARGETS = [
    {
        "area": "memory store",
        "what": "ns/check vs governor, {group}",
        "each": lambda res: grid(group=CRITERION_GROUPS),
        "ours": ("criterion", {"group": "{group}", "id": "sluice"}, "ns_per_check"),
        "theirs": ("criterion", {"group": "{group}", "id": "governor"}, "ns_per_check"),
        "unit": "ns",
        "digits": 1,
        "goal": 1.0,
        "better": "lower",
    },
    {
        "area": "HTTP",
        "what": "`sluice serve` (memory) req/s vs bare axum JSON echo",
        "ours": ("http", {"scenario": "sluice-memory"}, "rps"),
        "theirs": ("http", {"scenario": "echo"}, "rps"),
        "unit": "req/s",
        "goal": 0.9,
        "better": "higher",
    },
    {
        "area": "HTTP",
        "what": "`sluice serve` (memory) req/s vs throttlecrab-server",
        "ours": ("http", {"scenario": "sluice-memory"}, "rps"),
        "theirs": ("http", {"scenario": "throttlecrab"}, "rps"),
        "unit": "req/s",
        "goal": 1.2,
        "better": "higher",
    },
    {
        "area": "HTTP",
        "what": "`sluice serve` (memory) p99 vs throttlecrab-server (no worse)",
        "ours": ("http", {"scenario": "sluice-memory"}, "p99_ms"),
        "theirs": ("http", {"scenario": "throttlecrab"}, "p99_ms"),
        "unit": "ms",
        "digits": 2,
        "goal": 1.0,
        "better": "lower",
    },
    {
        "area": "Redis path",
        "what": "`sluice bench` {algorithm} {scenario} vs redis-benchmark of its script (-P 16)",
        "each": lambda res: grid(algorithm=res.algorithms, scenario=SCENARIOS),
        "ours": (
            "sluice-bench",
            {"target": "redis", "algorithm": "{algorithm}", "scenario": "{scenario}"},
            "result.decisions_per_sec",
        ),
        "theirs": ("lua", {"script": "sluice:{algorithm}", "scenario": "{scenario}"}, "rps"),
        "unit": "/s",
        "goal": 1.0,
        "better": "higher",
        "shown": "if either measured",
    },
    {
        "area": "Redis path",
        "what": "`sluice bench` {algorithm} {scenario} vs redis-cell `CL.THROTTLE` {scenario}",
        # On a hot key redis-cell's native code has the edge: 0.6 of it.
        "each": lambda res: [
            {"algorithm": a, "scenario": s, "goal": g}
            for a in FEATURED
            for s, g in (("random", 1.0), ("hot", 0.6))
        ],
        "ours": (
            "sluice-bench",
            {"target": "redis", "algorithm": "{algorithm}", "scenario": "{scenario}"},
            "result.decisions_per_sec",
        ),
        "theirs": ("lua", {"script": "redis-cell", "scenario": "{scenario}"}, "rps"),
        "unit": "/s",
        "better": "higher",
        "shown": "if either measured",
    },
    {
        "area": "Redis module",
        "what": "`sluice bench` on the module, {algorithm} {scenario}: decisions/s vs redis-cell `CL.THROTTLE`",
        "each": lambda res: grid(algorithm=FEATURED, scenario=MODULE_TARGET_SCENARIOS),
        "ours": (
            "module",
            {"target": "sluice", "path": "module", "algorithm": "{algorithm}", "scenario": "{scenario}"},
            "result.decisions_per_sec",
        ),
        "theirs": ("module", {"script": "redis-cell", "scenario": "{scenario}"}, "rps"),
        "unit": "/s",
        "goal": 1.5,
        "better": "higher",
        "shown": "if either measured",
    },
    {
        "area": "Redis module",
        "what": "the module, {algorithm} {scenario}: Redis µs per decision vs redis-cell's (INFO commandstats)",
        "each": lambda res: grid(algorithm=FEATURED, scenario=MODULE_TARGET_SCENARIOS),
        "ours": (
            "module",
            {"target": "sluice", "path": "module", "algorithm": "{algorithm}", "scenario": "{scenario}"},
            "redis_usec_per_decision",
        ),
        # redis-cell decides one key per call.
        "theirs": ("module", {"script": "redis-cell", "scenario": "{scenario}"}, "redis_usec_per_call"),
        "unit": "µs",
        "digits": 2,
        "goal": 0.5,
        "better": "lower",
        "shown": "if either measured",
    },
    {
        "area": "Redis CPU",
        "what": "Sluice's script, {algorithm} {scenario}: µs/call vs careful GCRA",
        "each": lambda res: grid(algorithm=res.algorithms, scenario=SCENARIOS),
        "ours": (
            "lua",
            {"script": "sluice:{algorithm}", "scenario": "{scenario}"},
            "redis_usec_per_call",
        ),
        "theirs": ("lua", {"script": "gcra_reference", "scenario": "{scenario}"}, "redis_usec_per_call"),
        "unit": "µs",
        "digits": 2,
        "goal": 0.8,
        "better": "lower",
        "shown": "if ours ran",
    },
    {
        "area": "memory",
        "what": "memory store bytes per key at {keys} keys",
        "labels": {"keys": ("memory", {"store": "sluice-memory"}, "keys")},
        "ours": ("memory", {"store": "sluice-memory"}, "bytes_per_key"),
        "unit": "B",
        "digits": 1,
        "goal": 100,
        "better": "lower",
    },
    {
        "area": "memory",
        "what": "memory store bytes per key vs throttlecrab-server's",
        "ours": ("memory", {"store": "sluice-memory"}, "bytes_per_key"),
        "theirs": ("memory", {"store": "throttlecrab-server"}, "bytes_per_key"),
        "unit": "B",
        "digits": 1,
        "goal": 0.75,
        "better": "lower",
    },
]


# Issue 15: the sliding window log at its documented maximum of live
# entries (README: `limit` ≤ 100,000) against the token bucket's Redis time.
TARGETS.append(
    {
        "area": "Redis CPU",
        "what": "sliding_window_log at 100,000 live entries: Redis µs/decision vs token bucket (hot key)",
        "ours": ("sliding-log", {"algorithm": "sliding_window_log", "entries": "100000"}, "redis_usec_per_decision"),
        "theirs": ("sliding-log", {"algorithm": "token_bucket", "entries": "100000"}, "redis_usec_per_decision"),
        "unit": "µs",
        "digits": 2,
        "goal": 2.0,
        "better": "lower",
        "shown": "if ours ran",
    }
)


# Issue 15: local budgets on a hot key, several client processes, against
# the same processes deciding every check in Redis.
TARGETS += [
    {
        "area": "local budgets",
        "what": "hot key, several processes: decisions/s with a local budget vs plain Redis",
        "ours": ("local-budget", {"scenario": "budget"}, "result.decisions_per_sec"),
        "theirs": ("local-budget", {"scenario": "plain"}, "result.decisions_per_sec"),
        "unit": "/s",
        "goal": 5.0,
        "better": "higher",
        "shown": "if either measured",
    },
    {
        "area": "local budgets",
        "what": "hot key, several processes: Redis calls per decision with a local budget",
        "ours": ("local-budget", {"scenario": "budget"}, "result.redis_calls_per_decision"),
        "unit": "calls",
        "digits": 5,
        "goal": 0.1,
        "better": "lower",
        "shown": "if ours ran",
    },
    {
        "area": "local budgets",
        "what": "hot key, several processes: units admitted over the token bucket's allowance vs the stated bound",
        "ours": ("local-budget", {"scenario": "budget"}, "result.over_admitted"),
        "theirs": ("local-budget", {"scenario": "budget"}, "result.bound"),
        "unit": "units",
        "goal": 1.0,
        "better": "lower",
        "shown": "if ours ran",
    },
]


def grid(**axes):
    """Every combination of the axes' values, the first axis outermost."""
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*axes.values())]


class Target:
    """One target: a measured ratio against a goal, higher or lower better."""

    def __init__(self, area, what, measured, value, goal, higher_is_better, unit="×", digits=1):
        self.area = area
        self.digits = digits
        self.what = what
        self.measured = measured
        self.value = value
        self.goal = goal
        self.higher = higher_is_better
        self.unit = unit

    @property
    def met(self):
        if self.value is None:
            return None
        return self.value >= self.goal if self.higher else self.value <= self.goal

    def value_text(self):
        if self.value is None:
            return "—"
        return fmt_ratio(self.value) if self.unit == "×" else f"{self.value:.{self.digits}f}{self.unit}"

    def goal_text(self):
        return ("≥ " if self.higher else "≤ ") + f"{self.goal:g}{self.unit}"

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
    """Evaluates TARGETS against the results, in order: one Target per
    record and binding, less those its `shown` rule leaves out."""
    out = []
    for spec in TARGETS:
        for binding in spec.get("each", lambda res: [{}])(res):
            target = evaluate(res, spec, binding)
            if target is not None:
                out.append(target)
    return out


def evaluate(res, spec, binding):
    """One record of TARGETS under one binding: a Target, or None if not shown."""

    def record(figure):
        area, fields, _ = figure
        return res.find(area, **{k: v.format(**binding) for k, v in fields.items()})

    def figure(figure):
        return None if figure is None else res.value(record(figure), figure[2])

    ours, theirs = figure(spec["ours"]), figure(spec.get("theirs"))
    shown = spec.get("shown", "always")
    if shown == "if either measured" and ours is None and theirs is None:
        return None
    if shown == "if ours ran" and record(spec["ours"]) is None:
        return None
    labels = {
        name: fmt_int((record(fig) or {}).get(fig[2])) for name, fig in spec.get("labels", {}).items()
    }
    what = spec["what"].format(**binding, **labels)
    goal = binding.get("goal", spec.get("goal"))
    higher = {"higher": True, "lower": False}[spec["better"]]
    digits, unit = spec.get("digits"), spec["unit"]

    def fmt(v):
        return fmt_int(v) if digits is None else fmt_num(v, digits)

    if "theirs" in spec:
        measured = f"{fmt(ours)} vs {fmt(theirs)} {unit}"
        return Target(spec["area"], what, measured, ratio(ours, theirs), goal, higher)
    return Target(spec["area"], what, f"{fmt(ours)} {unit}", ours, goal, higher, f" {unit}", digits or 0)


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
        for algorithm in FEATURED:
            v = res.sluice_bench_value("redis", algorithm, scenario, "decisions_per_sec")
            if v is not None:
                p99 = res.sluice_bench_value("redis", algorithm, scenario, "p99_us")
                note = f"{fmt_rate(v)}/s · p99 {p99 / 1000:.2f} ms"
                bars.append((f"{scenario}: sluice bench, {algorithm}", v, note, "sluice", scenario))
        for algorithm in FEATURED:
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
    for algorithm in FEATURED:
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
    for group in CRITERION_GROUPS:
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
    evaluated = targets(res)
    for t in evaluated:
        rows.append((t.mark(), t.area, t.what, t.measured, t.value_text(), t.goal_text(), t.gap_text()))
    met = sum(1 for t in evaluated if t.met)
    total = sum(1 for t in evaluated if t.met is not None)
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
    for group in CRITERION_GROUPS:
        sv = res.value(res.criterion(group, "sluice"), "ns_per_check")
        gv = res.value(res.criterion(group, "governor"), "ns_per_check")
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
    scripts = [f"sluice:{a}" for a in res.algorithms] + ["gcra_reference", "article", "redis-cell"]
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
        for algorithm in res.algorithms:
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


def cluster_section(res):
    recs = res.area("cluster")
    if not recs:
        return "Not run."
    rows, cmds = [], []
    for scenario in ("hot", "random"):
        unbatched = res.value(res.find("cluster", scenario=scenario, batching="off"), "result.decisions_per_sec")
        for batching in ("on", "off"):
            r = res.find("cluster", scenario=scenario, batching=batching)
            if r is None:
                continue
            label = f"cluster {scenario} batching {batching}"
            cmds.append((label if res.ok(r) else f"{label} (failed: {r.get('error')})", r.get("command")))
            if not res.ok(r):
                rows.append((scenario, batching, "failed", "", "", "", "", ""))
                continue
            x = r["result"]
            dps = x.get("decisions_per_sec")
            rows.append(
                (
                    scenario,
                    batching,
                    fmt_int(dps),
                    fmt_int(x.get("p99_us")),
                    fmt_int(x.get("errors")),
                    f"{r.get('calls_per_decision', 0):.3f}",
                    f"{r.get('redis_usec_per_decision', 0):.2f}",
                    fmt_ratio(ratio(dps, unbatched)),
                )
            )
    return (
        "`sluice bench` (token bucket, 64 decisions in flight) on a three-master "
        "Redis Cluster, with concurrent decisions packed per slot (batching on, "
        "the default) and with one call per decision (`--no-batching`). Calls "
        "and Redis µs are `FCALL`'s in `INFO commandstats`, summed over the "
        "nodes, over the decisions made. `hot`: one key (one slot); `random`: "
        "100,000 keys, spread over the 16,384 slots, so that concurrent "
        "decisions rarely share a slot.\n\n"
        + table(
            ["scenario", "batching", "decisions/s", "p99 µs", "errors", "calls/decision",
             "Redis µs/decision", "vs unbatched"],
            rows,
        )
        + "\n\n"
        + commands_block(cmds)
    )


def sliding_log_section(res):
    recs = res.area("sliding-log")
    if not recs:
        return "Not run."
    rows, cmds = [], []
    for limit in (100, 10000, 100000):
        bucket = res.value(res.find("sliding-log", algorithm="token_bucket", entries=str(limit)), "redis_usec_per_decision")
        for algorithm in ("sliding_window_log", "token_bucket"):
            r = res.find("sliding-log", algorithm=algorithm, entries=str(limit))
            if r is None:
                continue
            label = f"{algorithm}, limit {limit}"
            cmds.append((label if res.ok(r) else f"{label} (failed: {r.get('error')})", r.get("command")))
            if not res.ok(r):
                rows.append((fmt_int(limit), algorithm, "failed", "", "", "", "", ""))
                continue
            x = r["result"]
            per = r.get("redis_usec_per_decision")
            rows.append(
                (
                    fmt_int(limit),
                    algorithm,
                    "—" if r.get("live_after") is None else f"{fmt_int(r.get('filled'))} → {fmt_int(r.get('live_after'))}",
                    fmt_int(x.get("decisions_per_sec")),
                    f"{x.get('allowed_ratio', 0):.3f}",
                    f"{r.get('calls_per_decision', 0):.3f}",
                    "—" if per is None else f"{per:.2f}",
                    fmt_ratio(ratio(per, bucket)),
                )
            )
    return (
        "One hot key, `limit` per 10 s, `sluice bench` (64 decisions in flight, "
        "batched) on the main redis-server. For the log, the key is first filled "
        "with `limit` live entries in the library's format (one per microsecond, "
        "spread over the last 10 s), so every decision meets a full log; most are "
        "denied, and one is admitted as each entry expires. The token bucket has "
        "the same quota. Redis µs/decision is `FCALL`'s time in `INFO "
        "commandstats` over the decisions made.\n\n"
        + table(
            ["live entries (limit)", "algorithm", "log entries before → after", "decisions/s",
             "allowed", "calls/decision", "Redis µs/decision", "vs token bucket"],
            rows,
        )
        + "\n\n"
        + commands_block(cmds)
    )


def local_budget_section(res):
    recs = res.area("local-budget")
    if not recs:
        return "Not run."
    plain = res.value(res.find("local-budget", scenario="plain"), "result.decisions_per_sec")
    rows, cmds = [], []
    for scenario in ("plain", "budget"):
        r = res.find("local-budget", scenario=scenario)
        if r is None:
            continue
        label = "plain Redis" if scenario == "plain" else "local budget"
        cmds.append((label if res.ok(r) else f"{label} (failed: {r.get('error')})", r.get("command")))
        if not res.ok(r):
            rows.append((label, "failed", "", "", "", "", "", ""))
            continue
        x = r["result"]
        rows.append(
            (
                label,
                fmt_int(x.get("decisions_per_sec")),
                fmt_ratio(ratio(x.get("decisions_per_sec"), plain)),
                fmt_int(x.get("p99_us")),
                fmt_int(x.get("redis_calls")),
                f"{x.get('redis_calls_per_decision') or 0:.5f}",
                fmt_int(x.get("over_admitted")),
                fmt_int(x.get("bound")),
            )
        )
    return (
        "Several `sluice bench` processes at once (each its own client, as the "
        "servers of a fleet are), token bucket, one hot key of one Redis whose "
        "limit it never reaches, so both runs measure deciding. Plain: every "
        "decision is a call to Redis (batched). Local budget "
        "(`--local-budget 0.01,N`): each process takes slices of 1% of the "
        "burst over N processes in one call and spends them locally. "
        "Decisions/s are the processes' sum; Redis calls are the library's in "
        "`INFO commandstats`; over-admitted is what the processes admitted "
        "above the token bucket's allowance for the run's length, against the "
        "documented bound N × (slice − 1).\n\n"
        + table(
            ["run", "decisions/s", "vs plain", "p99 µs (worst process)", "Redis calls",
             "calls/decision", "over-admitted", "bound"],
            rows,
        )
        + "\n\n"
        + commands_block(cmds)
    )


def module_section(res):
    recs = res.area("module")
    if not recs:
        return "Not run."
    depths = sorted({r["result"]["concurrency"] for r in recs if "concurrency" in r.get("result", {})})
    depth = " or ".join(f"{d:,}" for d in depths) or "?"
    out = [
        "Sluice's native Redis module (`crates/sluice-redis-module`) against "
        "the same library's two Lua paths, on one redis-server of its own with "
        "the module and redis-cell loaded. `sluice bench --redis-path` forces "
        f"each path ({depth} decisions in flight, as many as redis-benchmark "
        "keeps requests; concurrent decisions share a call); "
        "redis-cell's `CL.THROTTLE` and the careful GCRA script run under "
        "`redis-benchmark -c 50 -P 16`, one decision per call. Redis µs per "
        "decision is the command's `usec` in `INFO commandstats` (reset before "
        "each run) over the decisions made; the ratios are against redis-cell "
        "in the same scenario.",
        "",
    ]
    algorithms = [a for a in res.algorithms if any(r.get("algorithm") == a for r in recs)]
    for scenario in SCENARIOS:
        cell = res.find("module", script="redis-cell", scenario=scenario)
        cell_dps = res.value(cell, "rps")
        cell_usec = res.value(cell, "redis_usec_per_call")
        rows, cmds = [], []
        for algorithm in algorithms:
            for path, name in MODULE_PATHS.items():
                r = res.find("module", target="sluice", path=path, algorithm=algorithm, scenario=scenario)
                if r is None:
                    continue
                label = f"Sluice {algorithm}, {name}"
                cmds.append((label, r.get("command")))
                if not res.ok(r):
                    rows.append((label, "failed", "", "", "", "", "", ""))
                    continue
                x = r["result"]
                dps, usec = x.get("decisions_per_sec"), r.get("redis_usec_per_decision")
                per_call = x["decisions"] / r["redis_calls"] if r.get("redis_calls") else None
                rows.append(
                    (
                        label,
                        fmt_int(dps),
                        fmt_int(x.get("p99_us")),
                        fmt_int(x.get("errors")),
                        fmt_num(usec, 2),
                        fmt_num(per_call, 1),
                        fmt_ratio(ratio(dps, cell_dps)),
                        fmt_ratio(ratio(usec, cell_usec)),
                    )
                )
        for script, name in (("redis-cell", "redis-cell `CL.THROTTLE`"), ("gcra_reference", "careful GCRA script")):
            r = res.find("module", script=script, scenario=scenario)
            if r is None:
                continue
            cmds.append((name, r.get("command")))
            if not res.ok(r):
                rows.append((name, "failed", "", "", "", "", "", ""))
                continue
            p99 = r.get("p99_ms")
            usec = r.get("redis_usec_per_call")
            rows.append(
                (
                    name,
                    fmt_int(r.get("rps")),
                    fmt_int(None if p99 is None else p99 * 1000),
                    "—",
                    fmt_num(usec, 2),
                    "1.0",
                    fmt_ratio(ratio(r.get("rps"), cell_dps)),
                    fmt_ratio(ratio(usec, cell_usec)),
                )
            )
        if not rows:
            continue
        out.append(f"**{scenario}**: {SCENARIO_TEXT[scenario]}.\n")
        out.append(
            table(
                [
                    "path",
                    "decisions/s",
                    "p99 µs",
                    "errors",
                    "Redis µs/decision",
                    "decisions/call",
                    "decisions/s vs redis-cell",
                    "Redis CPU vs redis-cell",
                ],
                rows,
            )
        )
        out.append("")
        out.append(commands_block(cmds))
        out.append("")
    return "\n".join(out)


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
            for k in ("area", "name", "script", "target", "path", "algorithm", "scenario", "store", "group", "id")
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
    # The summary that opens the page: by hand, like the analysis, so that a
    # reader sees where Sluice leads and trails before the full tables.
    try:
        with open(os.path.join(BENCH, "summary.md")) as f:
            summary = f.read().strip()
    except OSError:
        summary = "_bench/summary.md is missing._"
    quick = d.get("mode") == "quick"
    parts = [
        "# Performance",
        "",
        "<!-- Generated by bench/report.py from bench/results/latest.json: "
        "edit bench/summary.md, bench/analysis.md or the scripts under bench/, not this file. -->",
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
        "<!-- From bench/summary.md, by hand: keep it in step with the figures below. -->",
        "",
        summary,
        "",
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
        "## Hot keys: local budgets",
        "",
        local_budget_section(res),
        "",
        "## Redis Cluster: batching per slot",
        "",
        cluster_section(res),
        "",
        "## The sliding window log by live entries",
        "",
        sliding_log_section(res),
        "",
        "## Redis: the native module against the Lua paths and redis-cell",
        "",
        module_section(res),
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
    try:
        with open(args.results) as f:
            res = Results(json.load(f))
    except (OSError, ValueError) as e:
        parser.exit(1, f"bench/report.py: cannot read the results {args.results}: {e}\n"
                    "(bench/run writes them; --results FILE names another file)\n")
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
