"""Recognition accuracy and speed, reading variants side by side, on the OpenALPR US sets.

Variants: PP-OCRv4 reading views of the plate (`ppocr`, and the ablations before it), and our
own recognizer trained on rendered plates (`plate`, `plate-norefine`).

    python -m bench.accuracy [--limit N] [--variants a,b] [--threads 1] [--data DIR]

Each variant is the real pipeline (`worker.recognize.read.Recognizer`) with different settings; the
end-to-end set runs `recognize`, the crops set runs `read_plate_image`. Timing is the
recognition call only, one onnxruntime thread unless told otherwise: wall clock, and this
process's CPU time (the cost on one core, which stays honest when others share the machine);
`cpu 720p` is the CPU median over the photos of exactly 1280x720 (issue 3's target is per 720p
frame; the set mixes sizes). The data folder is
evaluation data that the repository does not ship: without it this exits with a message.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

from worker.recognize.detect import Band
from worker.recognize.eval import Summary, evaluate, load_items

# ../shared/data beside the repository (where CI and the developers have it), unless told.
DEFAULT_DATA = Path(os.environ.get("PLATEWATCH_BENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SETS = {"us": "openalpr-us", "us-crops": "openalpr-us-crops"}


def variants() -> dict[str, dict]:
    """Recognizer settings per variant (imported lazily: it pulls in onnxruntime)."""
    from worker.recognize.platerec import CRNN_PATHS, HEAD_PATH, MODEL_PATHS
    from worker.recognize.read import View

    plain_middle = View(Band(0.15, 0.90, 0.10))
    ppocr = {"reader": "ppocr"}
    return {
        # PP-OCRv4 reading the whole plate rectangle once: the historical baseline.
        "whole-plate": {**ppocr, "quick_view": View(Band(0.0, 1.0, 0.10)), "max_refined": 0},
        # PP-OCRv4 on one middle band of the frame-level plate estimate, no refinement.
        "middle-band": {**ppocr, "quick_view": plain_middle, "max_refined": 0},
        # Middle band + re-detection at higher resolution + two more views, plain colour only.
        "refined-plain": {
            **ppocr, "quick_view": plain_middle,
            "refined_views": (View(Band(0.25, 0.80, 0.10)), View(Band(0.10, 0.95, 0.20))),
        },
        # PP-OCRv4 with red-channel and stretched views mixed in (see worker/recognize/read.py).
        "ppocr": ppocr,
        # Without the second, full-resolution look at frames where the first pass read nothing.
        "ppocr-noretry": {**ppocr, "retry_side": 0},
        "ppocr+plate-noretry": {"reader": "ppocr+plate", "retry_side": 0},
        # Cheaper detector pass (960 px instead of 1024): a few small plates fewer.
        "ppocr-det960": {**ppocr, "limit_side": 960},
        # Refine only the most plate-like proposal.
        "ppocr-refine1": {**ppocr, "max_refined": 1},
        # Our recognizer (worker/recognize/platerec.py) on the plate as first placed and as re-detected.
        "plate": {"reader": "plate"},
        # Our recognizer on the plate as first placed only: no second detector pass.
        "plate-norefine": {"reader": "plate", "max_refined": 0},
        # The same without the head on PP-OCRv4 features: the two CRNNs alone (session 5's reader).
        "plate-crnn": {"reader": "plate", "plate_models": CRNN_PATHS},
        "plate-crnn-norefine": {"reader": "plate", "max_refined": 0, "plate_models": CRNN_PATHS},
        # The head on PP-OCRv4 features alone.
        "plate-head-norefine": {"reader": "plate", "max_refined": 0, "plate_models": (HEAD_PATH,)},
        # PP-OCRv4 views with our CRNNs' reading of each refined plate fused in.
        "ppocr+plate": {"reader": "ppocr+plate"},
        # ... with the head on PP-OCRv4 features fused in too (not only the CRNNs): ~8 ms a plate.
        "ppocr+plate+head-ppocrquick": {"reader": "ppocr+plate", "plate_models": MODEL_PATHS},
        # ... paid for by quick reads from the CRNNs: PP-OCRv4 views and the head on refined plates.
        "ppocr+plate+head": {"reader": "ppocr+plate+head"},
    }


def run_variant(name: str, settings: dict, folder: Path, limit: int | None, threads: int):
    from worker.recognize.read import Recognizer

    items, label_errors = load_items(folder, lambda message: print(f"  {message}", file=sys.stderr))
    items = items[:limit] if limit else items
    summary: Summary = evaluate(items, Recognizer(threads=threads, **settings), lambda m: None)
    summary.errors += label_errors
    return summary


def format_row(variant: str, set_name: str, summary: Summary) -> str:
    d = summary.as_dict()
    n = max(d["images"], 1)
    detected = "-" if d["detected"] is None else f"{100 * d['detected'] / n:5.1f}"
    hd = "-" if d["cpu_ms_720p_median"] is None else f"{d['cpu_ms_720p_median']:.1f}"
    return (
        f"{variant:16s} {set_name:9s} {d['images']:4d} {100 * d['exact'] / n:6.1f} "
        f"{100 * d['within1'] / n:8.1f} {detected:>6s} {d['ms_median']:8.1f} {d['ms_p90']:7.1f}"
        f" {d['cpu_ms_median']:8.1f} {d['cpu_ms_p90']:7.1f} {hd:>8s}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, help="first N items of each set (quick iteration)")
    parser.add_argument("--variants", help="comma-separated subset of: " + ", ".join(variants()))
    parser.add_argument("--sets", default="us,us-crops", help="comma-separated: us, us-crops")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding the sets")
    args = parser.parse_args(argv)

    if not args.data.is_dir():
        print(f"bench.accuracy: skipped: no data folder at {args.data} (set --data)")
        return 0
    chosen = variants()
    if args.variants:
        unknown = set(args.variants.split(",")) - set(chosen)
        if unknown:
            parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
        chosen = {k: v for k, v in chosen.items() if k in args.variants.split(",")}

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, onnxruntime threads {args.threads}")
    print(f"{'variant':16s} {'set':9s} {'n':>4s} {'exact%':>6s} {'within1%':>8s} {'det%':>6s} "
          f"{'ms med':>8s} {'ms p90':>7s} {'cpu med':>8s} {'cpu p90':>7s} {'cpu 720p':>8s}")
    for set_key in args.sets.split(","):
        folder = args.data / SETS[set_key]
        if not folder.is_dir():
            print(f"{set_key}: skipped: {folder} is missing")
            continue
        for name, settings in chosen.items():
            summary = run_variant(name, settings, folder, args.limit, args.threads)
            print(format_row(name, set_key, summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
