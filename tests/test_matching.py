"""Plate normalisation, confusion folding and match rules (pure functions)."""

from __future__ import annotations

import pytest

from contract.plates import InvalidPlate, fold, normalize
from server.matching import best_match, read_texts


@pytest.mark.parametrize(("raw", "norm"), [("abc-123", "ABC123"), (" 7 XYZ 442 ", "7XYZ442"), ("ab.c·1\u20112", "ABC12"),
                                         (" - ", "")])
def test_normalize(raw, norm):
    assert normalize(raw) == norm


@pytest.mark.parametrize(("raw", "char"), [("£$%", "£"), ("é1", "é"), ("straße", "ß"), ("ﬁ1", "ﬁ"), ("A１", "１"),
                                          ("AB/12", "/")])
def test_normalize_refuses_what_is_not_a_to_z_or_a_digit(raw, char):
    """Unicode's upper-casing would make 'ß' 'SS' and 'ﬁ' 'FI': plates nobody wrote."""
    with pytest.raises(InvalidPlate) as refused:
        normalize(raw)
    assert refused.value.char == char and repr(char) in str(refused.value)


def test_fold_maps_each_confusion_class_to_one_character():
    assert fold("0ODQ") == "0000"
    assert fold("1IL2Z5S6G8B") == "11122556688"
    assert fold("ACEHKMNPRTUVWXY34679") == "ACEHKMNPRTUVWXY34679"  # not confusable: untouched


@pytest.mark.parametrize(
    ("texts", "listed", "rule", "detail"),
    [
        (["ABC123"], "ABC123", "exact", "exact match on ABC123"),
        (["A8C123"], "ABC123", "confusion", "read A8C123 ~ listed ABC123 (8→B at 2)"),
        (["A8C1Z3"], "ABC123", "confusion", "(8→B at 2, Z→2 at 5)"),
        (["XYZ999", "ABC123"], "ABC123", "candidate", "candidate match on ABC123"),
        (["A8C123", "ABC123"], "ABC123", "candidate", "candidate match"),  # exact candidate beats a confusion
    ],
)
def test_rules(texts, listed, rule, detail):
    match = best_match(texts, listed)
    assert match.rule == rule and detail in match.detail


@pytest.mark.parametrize(
    ("texts", "listed"),
    [
        (["ABC124"], "ABC123"),   # 4 vs 3 is not a known confusion
        (["ABC12"], "ABC123"),    # missing character
        (["8D5I2O"], "BOS120"),   # three swaps: too far to call a misread
        (["XYZ999", "ABCI23"], "ABC123"),  # a candidate matches only exactly: it is a guess already
    ],
)
def test_no_match(texts, listed):
    assert best_match(texts, listed) is None


def test_read_texts_dedupes_and_keeps_order():
    assert read_texts("abc 123", ["ABC123", "A8C123", "", "a8c-123"]) == ["ABC123", "A8C123"]
