"""Train our plate head on PP-OCRv4's frozen recogniser features (issue 5; worker/recognize/platehead.py).

    python -m training.plate_head [--seed S] [--batches N] [--epochs E] [--out PATH] [--log PATH]

Renders N batches of 64 plates (`synth.plategen`, batch seeds from S; every other batch with
stacked characters drawn as real plates do), turns the middle band of each plate into PP-OCRv4's
sequence features once (onnxruntime, one thread per helper process: the costly part, about 20
minutes for the default 128,000 plates on 2 cores), then trains a bidirectional LSTM and a
plate-alphabet classifier on them for E epochs with CTC loss (about 5 minutes). Only the head is
trained and written: the recogniser stays as the wheel ships it, and the head file records its
SHA-256. Same seed, fonts and library versions: same file. Never train on
../shared/data: it is the yardstick.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from synth import platefonts, plategen
from worker.recognize import platehead
from worker.recognize.ctc import best_path
from worker.recognize.platerec import CLASSES, HEAD_PATH
from training.recognizer import BAND, VALIDATION_SEED, encode

BATCH = 64  # plates per rendered batch
_backbone: platehead.Backbone | None = None


class Head(nn.Module):
    """(N, T, 120) recogniser features -> (N, T, CLASSES) log-probabilities. About 0.17 M parameters."""

    def __init__(self, features: int = 120, hidden: int = 96, classes: int = CLASSES):
        super().__init__()
        self.rnn = nn.LSTM(features, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.rnn(x)[0]).log_softmax(-1)


class Exported(nn.Module):
    """What ships: probabilities. Not `training.recognizer.Exported`: its attribute name ends up
    in the ONNX tensor names, so sharing it would change the committed head's bytes (checked)."""

    def __init__(self, head: Head):
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x).exp()


def featurise(args: tuple[int, int, float, bool]) -> tuple[np.ndarray, list[str]]:
    """One rendered batch as recogniser features of its plates' middle bands (float16: half the
    memory, same training)."""
    global _backbone
    size, seed, loose, stacked_pairs = args
    _backbone = _backbone or platehead.Backbone(threads=1)
    pairs = plategen.make_batch(size, seed, loose=loose, stacked_pairs=stacked_pairs)
    features = _backbone.features([platehead.band_of(img, BAND) for img, _ in pairs])
    return features.astype(np.float16), [label for _, label in pairs]


def dataset(seed: int, batches: int, loose: float) -> tuple[np.ndarray, list[str]]:
    """Every other batch draws stacked characters as real plates do (`plategen`'s option)."""
    feats, labels = [], []
    jobs = ((BATCH, seed * 1_000_003 + i, loose, i % 2 == 1) for i in range(batches))
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for f, y in pool.imap(featurise, jobs, chunksize=2):
            feats.append(f)
            labels += y
    return np.concatenate(feats), labels


def validate(head: Head, x: torch.Tensor, labels: list[str]) -> float:
    head.eval()
    with torch.no_grad():
        texts = [best_path(p)[0] for p in head(x).exp().numpy()]
    head.train()
    return sum(t == y for t, y in zip(texts, labels)) / len(labels)


def train(seed: int, x: np.ndarray, labels: list[str], epochs: int, log_path: Path) -> Head:
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    head, batch = Head(), 128
    opt = torch.optim.AdamW(head.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * (len(labels) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    val_x, val_y = featurise((1000, VALIDATION_SEED, 0.0, False))
    val_x = torch.from_numpy(val_x.astype(np.float32))
    order = torch.Generator().manual_seed(seed)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log_path, "w", newline="") as fh:
        log = csv.writer(fh)
        log.writerow(["epoch", "minutes", "loss", "val_exact"])
        for epoch in range(1, epochs + 1):
            perm, losses = torch.randperm(len(labels), generator=order), []
            for i in range(0, len(labels) - batch + 1, batch):
                idx = perm[i:i + batch].numpy()
                logp = head(torch.from_numpy(x[idx].astype(np.float32)))
                targets, lengths = encode([labels[j] for j in idx])
                loss = ctc(logp.transpose(0, 1), targets, torch.full((batch,), logp.shape[1]), lengths)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                losses.append(loss.item())
            row = [epoch, round((time.perf_counter() - started) / 60, 2), round(float(np.mean(losses)), 4),
                   round(validate(head, val_x, val_y), 4)]
            log.writerow(row)
            fh.flush()
            print(*row, sep="\t", flush=True)
    return head


def export(head: Head, out: Path) -> None:
    import onnx

    out.parent.mkdir(parents=True, exist_ok=True)
    head.eval()
    torch.onnx.export(Exported(head), (torch.zeros(1, platehead.WIDTH // 8, 120),), str(out),
                      input_names=[platehead.HEAD_INPUT], output_names=["probs"],
                      dynamic_axes={platehead.HEAD_INPUT: {0: "n", 1: "t"}, "probs": {0: "n", 1: "t"}},
                      opset_version=17, dynamo=False)
    model = onnx.load(str(out))
    backbone = platehead.Backbone()
    onnx.helper.set_model_props(model, {"backbone": json.dumps(
        {"file": backbone.path.name, "sha256": backbone.sha256, "features": platehead.FEATURES}),
        "band": platehead.band_json(BAND)})
    onnx.save(model, str(out))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.plate_head", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=3)  # 1 and 2 are the CRNNs' batches
    parser.add_argument("--batches", type=int, default=2000, help="rendered batches of 64 plates")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--loose", type=float, default=0.0, help="share of loosely framed crops (plategen.degrade)")
    parser.add_argument("--out", type=Path, default=HEAD_PATH)
    parser.add_argument("--log", type=Path, default=Path("training/logs/plate_head.csv"))
    args = parser.parse_args(argv)
    if missing := platefonts.missing_fonts():
        sys.exit("training needs every font in synth/platefonts.py (same seed, same data); missing:\n  "
                 + "\n  ".join(missing))
    started = time.perf_counter()
    x, labels = dataset(args.seed, args.batches, args.loose)
    print(f"{len(labels)} plates as features in {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    export(train(args.seed, x, labels, args.epochs, args.log), args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
