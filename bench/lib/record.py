"""Prints one JSON object from `key=string` and `key:=json` arguments.

Used by bench/run (through `record` in common.sh) to append one result per
line to the run's records file: `key:=` values are raw JSON (numbers, null,
true, objects), `key=` values are strings.
"""

import json
import sys


def main(args):
    out = {}
    for arg in args:
        i = arg.index("=")
        if i > 0 and arg[i - 1] == ":":
            key, raw = arg[: i - 1], arg[i + 1 :]
            out[key] = json.loads(raw) if raw != "" else None
        else:
            key, value = arg.split("=", 1)
            out[key] = value
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1:])
