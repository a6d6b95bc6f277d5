"""CTC decoding shared by both plate readers: greedy and prefix beam search, and fusing views."""

from __future__ import annotations

import numpy as np

from worker.recognize.plates import ALPHABET

Reading = list[tuple[str, float]]  # CTC candidates of one view: (text, probability), best first


def best_path(probs: np.ndarray) -> tuple[str, float]:
    """Greedy CTC decode; confidence is the mean probability of the emitted characters."""
    idx = probs.argmax(axis=1)
    chars, confs, prev = [], [], 0
    for t, k in enumerate(idx):
        if k != 0 and k != prev:
            chars.append(ALPHABET[k - 1])
            confs.append(probs[t, k])
        prev = k
    return "".join(chars), float(np.mean(confs)) if confs else 0.0


def beam_search(probs: np.ndarray, beam: int = 10, prune: float = 1e-3) -> Reading:
    """CTC prefix beam search; returns (text, P(text)) best first.

    P(text) sums over all alignments, so it is a real probability and candidates that differ by
    one uncertain character get sensible, comparable confidences.
    """
    beams: dict[str, tuple[float, float]] = {"": (1.0, 0.0)}  # prefix -> (P end blank, P end char)
    for step in probs:
        chars = np.flatnonzero(step[1:] > prune) + 1
        nxt: dict[str, list[float]] = {}
        for prefix, (p_b, p_c) in beams.items():
            total = p_b + p_c
            entry = nxt.setdefault(prefix, [0.0, 0.0])
            entry[0] += total * step[0]
            last = ALPHABET.index(prefix[-1]) + 1 if prefix else -1
            for k in chars:
                p = float(step[k])
                extended = nxt.setdefault(prefix + ALPHABET[k - 1], [0.0, 0.0])
                if k == last:  # a repeat only adds a character after a blank; else it collapses
                    entry[1] += p_c * p
                    extended[1] += p_b * p
                else:
                    extended[1] += total * p
        ranked = sorted(nxt.items(), key=lambda kv: kv[1][0] + kv[1][1], reverse=True)
        beams = {k: (v[0], v[1]) for k, v in ranked[:beam]}
    return [(text, float(pb + pc)) for text, (pb, pc) in beams.items()]


def fuse(readings: list[Reading]) -> dict[str, float]:
    """Average each text's probability over several readings (absent = 0)."""
    scores: dict[str, float] = {}
    for reading in readings:
        for text, p in reading:
            scores[text] = scores.get(text, 0.0) + p / len(readings)
    return scores
