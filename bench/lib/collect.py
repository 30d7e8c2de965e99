"""Assembles one bench/run into bench/results/latest.json: the machine it
ran on, the tools' versions, and every record the run appended to its
records file (one JSON object per line).

    python3 collect.py --records FILE --mode full|quick --sections a,b
                       [--algorithms a,b] --seconds N --started EPOCH --out FILE

--algorithms names the algorithms the run measured, in the library's order
(bench/report.py lists them in that order; every record names its own too).
"""

import argparse
import datetime
import json
import os
import platform
import subprocess


def run(*command):
    """The first line a command prints (stdout, else stderr), or None."""
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def mem_total_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def os_name():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def machine():
    git_commit = run("git", "rev-parse", "--short", "HEAD")
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_bytes": mem_total_bytes(),
        "kernel": platform.release(),
        "os": os_name(),
        "redis_server": run("redis-server", "--version"),
        "redis_benchmark": run("redis-benchmark", "--version"),
        "wrk": run("wrk", "--version"),
        "rustc": run("rustc", "--version"),
        "python": platform.python_version(),
        "git_commit": git_commit,
        "git_dirty": bool(dirty),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", required=True)
    parser.add_argument("--mode", required=True)
    parser.add_argument("--sections", default="")
    parser.add_argument("--algorithms", default="")
    parser.add_argument("--seconds", type=int, required=True)
    parser.add_argument("--started", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    records = []
    with open(args.records) as f:
        for line in f:
            line = line.strip()
            if line:
                records.append(json.loads(line))
    started = datetime.datetime.fromtimestamp(args.started, datetime.timezone.utc)
    result = {
        "schema": 1,
        "mode": args.mode,
        "sections": [s for s in args.sections.split(",") if s],
        "algorithms": [a for a in args.algorithms.split(",") if a],
        "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": args.seconds,
        "machine": machine(),
        "records": records,
    }
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
