"""Synthetic training plates (synth.plategen): formats, determinism, degradations, CLI, and
that a clean rendered plate is legible to the existing OCR pipeline."""

from __future__ import annotations

import csv
import dataclasses
import random

import cv2
import numpy as np
import pytest

from synth import platefonts, plategothic, platestacked
from synth import plategen as pg

US_STATES_AND_DC = 51


def test_every_state_and_dc_has_formats_and_a_colour_scheme():
    assert len(pg.STATES) == US_STATES_AND_DC
    for state, (formats, schemes, _slogan) in pg.STATES.items():
        assert 1 <= len(formats) <= 3, state
        assert schemes, state
        for fmt in formats:
            assert set(fmt) <= set("LD -") and 3 <= len(fmt) <= 8, (state, fmt)
            assert 3 <= len(fmt.replace(" ", "").replace("-", "")) <= 8, (state, fmt)


def test_generated_texts_match_their_pattern_and_never_contain_o():
    rng = random.Random(0)
    letters, vanity, faces = [], 0, {"gothic": 0, "outline": 0, "hershey": 0}
    for _ in range(2000):
        spec = pg.sample_plate(rng)
        if spec.format not in pg.STATES[spec.state][0]:  # a vanity format: any 2-8 L/D, maybe split
            vanity += 1
            assert 2 <= len(spec.label) <= 8 and set(spec.format) <= set("LD -"), spec.format
        assert pg.pattern_regex(spec.format).fullmatch(spec.text), (spec.format, spec.text)
        assert "O" not in spec.text
        assert spec.label == spec.text.replace(" ", "").replace("-", "")
        letters += [c for c in spec.text if c.isalpha()]
        faces["gothic" if spec.gothic else "outline" if spec.ttf else "hershey"] += 1
        assert not (spec.gothic and spec.ttf)
    share = {c: letters.count(c) / len(letters) for c in "IQA"}
    assert share["I"] < share["A"] / 2 and share["Q"] < share["A"] / 2  # I and Q are rare
    assert abs(vanity / 2000 - pg.VANITY_SHARE) < 0.03
    for face, count in faces.items():
        assert abs(count / 2000 - pg.FONT_SHARES[face]) < 0.035, face


def test_every_training_font_is_installed():
    """`make test` and `make train-recognizer` install the font packages: same fonts, same data."""
    assert platefonts.missing_fonts() == []


@pytest.mark.parametrize("font", platefonts.FONT_FILES, ids=lambda p: p.rsplit("/", 1)[-1])
def test_outline_fonts_draw_each_character_in_its_own_cell(font):
    mask = platefonts.registration("AB8-Q27", font, (800, 400), char_height=0.45, char_center=0.55,
                                   pitch=0.62, squeeze=0.9, bolder=0.0)
    count, _labels, stats, _ = cv2.connectedComponentsWithStats((mask > 127).astype(np.uint8))
    blobs = sorted(stats[1:].tolist(), key=lambda s: s[0])  # left to right
    assert count - 1 == 7, font  # A B 8 - Q 2 7: nothing merged, nothing lost
    dash = blobs[3]
    assert dash[3] < 0.3 * blobs[0][3]  # the dash is thin and sits mid-height
    a_top, a_height = blobs[0][1], blobs[0][3]  # 'A' spans the cap height, centred as asked
    assert abs(a_top - (0.55 - 0.45 / 2) * 400) < 6 and abs(a_height - 0.45 * 400) < 10


GOTHIC_STYLES = [plategothic.Style()] + [plategothic.random_style(random.Random(i)) for i in range(12)]


@pytest.mark.parametrize("style", GOTHIC_STYLES, ids=lambda s: f"w{s.width}-s{s.stroke}")
def test_plate_gothic_draws_every_character_apart_and_on_the_cap_height(style):
    text = "0123456789ABCDEFGHIJKLMNPQRSTUVWXYZ"
    mask = platefonts.registration(text, style, (3200, 200), char_height=0.6, char_center=0.5,
                                   pitch=0.62, squeeze=1.0, bolder=0.0)
    count, _labels, stats, _ = cv2.connectedComponentsWithStats((mask > 127).astype(np.uint8))
    assert count - 1 == len(text)  # one blob per character: nothing merged, nothing missing
    tops, heights = stats[1:, cv2.CC_STAT_TOP], stats[1:, cv2.CC_STAT_HEIGHT]
    assert np.all(np.abs(tops - 40) <= 3) and np.all(np.abs(heights - 120) <= 6)  # Q's tail aside


def test_plate_gothic_style_changes_the_shapes_that_real_plates_vary():
    """The shapes a recognizer confuses on real plates (1/I, W/H, 4) differ between styles."""
    base = plategothic.Style(one_flag=0.3, one_foot=False, four_open=False, w_middle=0.0, i_serifs=False)
    ink = lambda char, style: plategothic.glyph(char, style)[0]  # noqa: E731
    assert ink("1", base).shape[1] > 1.5 * ink("I", base).shape[1]  # the flag makes the 1 wider
    bare = dataclasses.replace(base, one_flag=0.0)
    assert ink("1", bare).shape == ink("I", bare).shape  # a bare stem: only context tells 1 from I
    for field, value, char in [("four_open", True, "4"), ("w_middle", 0.5, "W"), ("one_foot", True, "1")]:
        other = dataclasses.replace(base, **{field: value})
        assert ink(char, other).shape != ink(char, base).shape or np.any(ink(char, other) != ink(char, base))
    assert ink("-", base).shape[0] < ink("H", base).shape[0] / 4


def test_gothic_plates_and_emblems_render():
    rng = random.Random(5)
    seen = set()
    for _ in range(200):
        spec = pg.sample_plate(rng)
        img, label = pg.render_training_plate(spec, rng, height=64)
        assert img.shape == (64, 128, 3) and label == spec.label
        seen |= {"gothic"} if spec.gothic else set()
        seen |= {"emblem"} if spec.art == "emblem" else set()
    assert seen == {"gothic", "emblem"}


def test_glyphs_are_measured_against_the_cap_height():
    font = platefonts.FONT_FILES[0]
    _, h_top, h_bottom = platefonts.glyph("H", font)
    _, dash_top, dash_bottom = platefonts.glyph("-", font)
    assert abs(h_top) < 0.05 and abs(h_bottom - 1) < 0.05
    assert 0.3 < dash_top < dash_bottom < 0.8


def test_make_batch_is_deterministic_for_a_seed():
    a, b, c = pg.make_batch(12, seed=7), pg.make_batch(12, seed=7), pg.make_batch(12, seed=8)
    assert [t for _, t in a] == [t for _, t in b]
    assert all(np.array_equal(x, y) for (x, _), (y, _) in zip(a, b))
    assert [t for _, t in a] != [t for _, t in c]


def test_loose_framing_is_opt_in_and_leaves_the_default_batches_alone():
    """The committed CRNNs were trained on the default batches: `make train-recognizer` must
    still draw exactly those."""
    default, zero, loose = pg.make_batch(6, seed=7), pg.make_batch(6, seed=7, loose=0.0), pg.make_batch(6, seed=7, loose=1.0)
    assert all(np.array_equal(x, y) for (x, _), (y, _) in zip(default, zero))
    assert default[0][1] == loose[0][1] and not np.array_equal(default[0][0], loose[0][0])


def test_make_batch_views_degrade_each_plate_several_times():
    pairs = pg.make_batch(9, seed=7, views=2)
    labels = [t for _, t in pairs]
    assert len(pairs) == 9 and labels[0::2][:4] == labels[1::2][:4]  # plates in pairs, the last alone
    assert len(set(labels)) == 5
    assert any(not np.array_equal(pairs[i][0], pairs[i + 1][0]) for i in range(0, 8, 2))  # views differ
    assert labels[:2] != [t for _, t in pg.make_batch(2, seed=7)]  # views=1: one view per plate


def test_make_batch_resizes_to_the_requested_size():
    for img, label in pg.make_batch(10, seed=1, size=(128, 32)):
        assert img.shape == (32, 128, 3) and img.dtype == np.uint8
        assert label and set(label) <= set("ABCDEFGHIJKLMNPQRSTUVWXYZ0123456789")


def test_degrade_keeps_shape_and_dtype():
    rng = random.Random(3)
    for _ in range(40):  # enough draws that every optional step runs at least once
        img, _ = pg.render_training_plate(pg.sample_plate(rng), rng)
        out = pg.degrade(img, rng)
        assert out.shape == img.shape and out.dtype == np.uint8


def test_cli_writes_n_images_and_labels(tmp_path):
    assert pg.main([str(tmp_path), "5", "--seed", "2"]) == 0
    with open(tmp_path / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["file"] for r in rows] == [f"{i:06d}.jpg" for i in range(5)]
    assert all((tmp_path / r["file"]).stat().st_size > 0 for r in rows)
    assert [r["text"] for r in rows] == [t for _, t in pg.make_batch(5, seed=2)]


@pytest.fixture(scope="module")
def recognizer():
    from worker.recognize.read import Recognizer

    return Recognizer()


def test_clean_plates_are_legible_to_the_existing_reader(recognizer):
    rng = random.Random(11)
    hits = 0
    for _ in range(10):
        img, label = pg.render_training_plate(pg.sample_plate(rng), rng, height=120)
        read = recognizer.read_plate_image(img)
        hits += read is not None and read.text == label
    assert hits >= 6


def test_stacked_pairs_are_opt_in_and_leave_the_default_batches_alone():
    """The committed CRNNs were trained on the default batches; the head's every other batch
    draws stacked characters as real plates do (synth/platestacked.py)."""
    default, off = pg.make_batch(6, seed=9), pg.make_batch(6, seed=9, stacked_pairs=False)
    assert all(np.array_equal(x, y) for (x, _), (y, _) in zip(default, off))
    rng = random.Random(10)
    specs = [pg.sample_plate(rng, stacked_pairs=True) for _ in range(300)]
    stacked = [s for s in specs if s.stacked]
    assert 20 <= len(stacked) <= 90 and all(s.stacked_face and 2 <= len(s.stacked) <= 3 for s in stacked)
    assert any(s.stacked_right for s in stacked) and not all(s.stacked_right for s in stacked)


def test_stacked_characters_stand_as_tall_as_the_registration_and_stay_out_of_the_label():
    rng = random.Random(11)
    spec = dataclasses.replace(pg.sample_plate(rng), text="4434R", stacked="RT", stacked_face=True,
                               stacked_right=False, ttf=None, gothic=None, art="")
    mask = platestacked.registration_and_stacked(spec, (800, 400), random.Random(1), pg._registration_mask)
    columns = np.flatnonzero(mask.max(axis=0))
    def ink_height(cols):
        rows = np.flatnonzero(mask[:, cols].max(axis=1))
        return rows[-1] - rows[0]
    stack, last_char = columns[: len(columns) // 12], columns[-len(columns) // 12:]
    assert 0.75 <= ink_height(stack) / ink_height(last_char) <= 1.25
    img, label = pg.render_training_plate(spec, random.Random(2), height=80)
    assert label == "4434R" and img.shape == (80, 160, 3)
