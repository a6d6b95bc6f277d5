"""Train our plate recognizer (issue 5): a small CRNN with CTC loss on rendered plates.

    python -m training.recognizer [--seed S] [--steps N] [--out PATH] [--log PATH] [--fp32] [--views V]
                                  [--band] [--stacked-pairs]

Every batch is fresh: `synth.plategen` renders it from (seed, batch index) in a helper
process while the model trains, so no plate is seen twice and the run is the same on every
machine with the same fonts, library versions and thread count. Never train on ../shared/data:
it is the yardstick. PyTorch is a development extra (`pip install -e .[train]`); the worker
runs the exported ONNX file with onnxruntime.

One run trains one model of the shipped ensemble (`worker.recognize.platerec.SEEDS`; `make
train-recognizer` runs each seed with the defaults, which reproduce the committed weights). The
forward pass runs under bfloat16 autocast: CPUs with AMX or AVX-512 BF16 do the convolutions and
the LSTM in about half the time, and weights, loss and the exported model stay float32; `--fp32`
turns it off (for CPUs without bfloat16, or to compare). `--views 2` (an experiment) degrades
each drawn plate twice, halving the drawing that otherwise keeps the other core as busy as
training. `--band` teaches the model the middle band of each plate (as the head reads it; the
file names its band and the worker cuts it) and `--stacked-pairs` draws every other batch with
stacked characters as real plates have them (`plategen`'s option). Measured speeds and what they
cost in accuracy: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from synth import platefonts, plategen
from worker.recognize import platehead
from worker.recognize.ctc import best_path
from worker.recognize.detect import Band
from worker.recognize.platerec import CLASSES, INPUT_HEIGHT, INPUT_WIDTH, model_path, preprocess
from worker.recognize.plates import ALPHABET

VALIDATION_SEED = 10**9  # far from any training batch seed
LOG_EVERY = 500
THREADS = 1  # the other core renders the batches
# The middle band of a plate crop, as PP-OCRv4's own views read it: closer to real text lines
# (+3.5 points for the head alone on real crops, docs/benchmarks.md). The head reads it; a CRNN
# with --band.
BAND = Band(0.15, 0.90, 0.10)


@dataclass(frozen=True)
class Recipe:
    """What the model is shown; the defaults give the committed files' batches."""

    views: int = 1
    band: Band | None = None  # None: the whole plate crop
    stacked_pairs: bool = False


def conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class CRNN(nn.Module):
    """Convolutions down to 3 rows x 32 columns, a bidirectional LSTM along the columns, and
    per-column class probabilities (blank + alphabet). About 0.5 M parameters."""

    def __init__(self, classes: int = CLASSES, hidden: int = 96):
        super().__init__()
        self.features = nn.Sequential(
            *conv(1, 16), nn.MaxPool2d(2),  # 24 x 64
            *conv(16, 32), nn.MaxPool2d(2),  # 12 x 32
            *conv(32, 64), *conv(64, 64), nn.MaxPool2d((2, 1)),  # 6 x 32
            *conv(64, 96), *conv(96, 96), nn.MaxPool2d((2, 1)),  # 3 x 32
        )
        self.rnn = nn.LSTM(96 * 3, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) -> (N, T, classes) log-probabilities."""
        f = self.features(x)
        n, c, h, w = f.shape
        seq, _ = self.rnn(f.permute(0, 3, 1, 2).reshape(n, w, c * h))
        return self.head(seq).log_softmax(-1)


class Exported(nn.Module):
    """What ships: probabilities, not log-probabilities, as the beam search wants."""

    def __init__(self, model: CRNN):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).exp()


def encode(labels: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    targets = [ALPHABET.index(c) + 1 for label in labels for c in label]
    return torch.tensor(targets, dtype=torch.long), torch.tensor([len(s) for s in labels], dtype=torch.long)


def make_batch(args: tuple[int, int, int, Band | None, bool]) -> tuple[np.ndarray, list[str]]:
    """One training batch from its own seed: (N, 1, H, W) float32 and labels."""
    size, seed, views, band, stacked_pairs = args
    pairs = plategen.make_batch(size, seed, views=views, stacked_pairs=stacked_pairs)
    images = [preprocess(platehead.band_of(img, band)) for img, _ in pairs]
    return np.stack(images), [label for _, label in pairs]


def batches(seed: int, size: int, steps: int, recipe: Recipe, pool) -> Iterator[tuple[np.ndarray, list[str]]]:
    """Batch i from seed * 1,000,003 + i; with stacked pairs, every odd batch draws them."""
    jobs = ((size, seed * 1_000_003 + i, recipe.views, recipe.band, recipe.stacked_pairs and i % 2 == 1)
            for i in range(steps))
    return pool.imap(make_batch, jobs, chunksize=4)


def validate(model: CRNN, images: torch.Tensor, labels: list[str]) -> float:
    model.eval()
    with torch.no_grad():
        texts = [best_path(steps)[0] for steps in model(images).numpy()]
    model.train()
    return sum(t == y for t, y in zip(texts, labels)) / len(labels)


def train(seed: int, steps: int, batch: int, log_path: Path, bf16: bool = False,
          recipe: Recipe = Recipe()) -> CRNN:
    torch.manual_seed(seed)
    torch.set_num_threads(THREADS)
    model = CRNN()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    val_x, val_y = make_batch((1000, VALIDATION_SEED, 1, recipe.band, False))
    val_images = torch.from_numpy(val_x)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started, running = time.perf_counter(), []
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool, open(log_path, "w", newline="") as fh:
        log = csv.writer(fh)
        log.writerow(["step", "minutes", "samples", "loss", "lr", "val_exact"])
        for step, (x, labels) in enumerate(batches(seed, batch, steps, recipe, pool), start=1):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logp = model(torch.from_numpy(x)).float()
            targets, lengths = encode(labels)
            steps_in = torch.full((len(labels),), logp.shape[1], dtype=torch.long)
            loss = ctc(logp.transpose(0, 1), targets, steps_in, lengths)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            running.append(loss.item())
            if step % LOG_EVERY == 0 or step == steps:
                val = validate(model, val_images, val_y)
                row = [step, round((time.perf_counter() - started) / 60, 2), step * batch,
                       round(float(np.mean(running)), 4), f"{sched.get_last_lr()[0]:.2e}", round(val, 4)]
                log.writerow(row)
                fh.flush()
                print(*row, sep="\t", flush=True)
                running = []
    return model


def export(model: CRNN, out: Path, band: Band | None = None) -> None:
    """The ONNX file; a model taught on a band names it in the file (the worker cuts it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    dummy = torch.zeros(1, 1, INPUT_HEIGHT, INPUT_WIDTH)
    torch.onnx.export(Exported(model), (dummy,), str(out), input_names=["image"], output_names=["probs"],
                      dynamic_axes={"image": {0: "n"}, "probs": {0: "n"}}, opset_version=17, dynamo=False)
    if band is not None:
        onnx_model = onnx.load(str(out))
        onnx.helper.set_model_props(onnx_model, {"band": platehead.band_json(band)})
        onnx.save(onnx_model, str(out))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.recognizer", description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="default: worker/recognize/models/plate_rec_seed<SEED>.onnx")
    parser.add_argument("--log", type=Path, help="default: training/logs/recognizer_seed<SEED>.csv")
    parser.add_argument("--fp32", action="store_true", help="no bfloat16 autocast (slower on AMX CPUs)")
    parser.add_argument("--views", type=int, default=1, help="degraded views of each rendered plate")
    parser.add_argument("--band", action="store_true", help="read the middle band of each plate (BAND)")
    parser.add_argument("--stacked-pairs", action="store_true", help="every other batch with stacked pairs")
    args = parser.parse_args(argv)
    if missing := platefonts.missing_fonts():
        sys.exit("training needs every font in synth/platefonts.py (same seed, same data); missing:\n  "
                 + "\n  ".join(missing))
    out = args.out or model_path(args.seed)
    log = args.log or Path(f"training/logs/recognizer_seed{args.seed}.csv")
    recipe = Recipe(args.views, BAND if args.band else None, args.stacked_pairs)
    model = train(args.seed, args.steps, args.batch, log, not args.fp32, recipe)
    export(model, out, recipe.band)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
