"""`make bench`: every benchmark in one run. Figures go to docs/benchmarks.md by hand, with date
and machine. Accuracy and search take minutes; pass names to run a subset:

    python -m bench [latency] [alerts_out] [ingest] [hotlist_refresh] [search] [cameras] [accuracy]
        [detector] [traffic]
"""

from __future__ import annotations

import importlib
import sys

ALL = ("latency", "alerts_out", "ingest", "hotlist_refresh", "search", "cameras", "accuracy", "detector",
       "traffic")


def main(argv: list[str]) -> int:
    chosen = argv or list(ALL)
    unknown = sorted(set(chosen) - set(ALL))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(ALL)}", file=sys.stderr)
        return 2
    for name in chosen:
        print(f"\n== {name} ==", flush=True)
        module = importlib.import_module(f"bench.{name}")
        sys.argv = [f"bench.{name}"]
        result = module.main()
        if isinstance(result, int) and result != 0:
            return result
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
