"""Prohibited purposes and the access log: an admin keeps the list on the search reasons page
(audited); a search, a further page or a plate history whose case number or note names a listed
word or phrase is refused with the department's rule and audited (`search.refused`), whole words
only ("ICE" never refuses "police"); the transparency report lists them; and `platewatch report
access-log` holds every search and look-up with the fields Cal. Civ. Code 1798.90.52 asks for,
refused ones marked."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import httpx
import pytest

from server.purposes import PhraseRefused, clean_phrase, prohibited_in
from server.settings import CONFIG_NAME
from tests.conftest import make_settings, run_cli
from tests.test_web_admin import add_user, web_client
from tests.test_web_search import Officer, audit, reason_label

DEPARTMENT = "Springfield Police Department"


@pytest.fixture
def settings(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / CONFIG_NAME).write_text(f'department_name = "{DEPARTMENT}"\n')
    return make_settings(tmp_path / "data")


@pytest.fixture
def listed(dept):
    """ICE, immigration and "reproductive care" on the list, added by an admin on the web."""
    add_user(dept, "admin_ann", "admin")
    admin = web_client(dept, "admin_ann", "long enough pw")
    for phrase in ("ICE", "immigration", "  reproductive   care "):
        assert admin.post("/search/purposes", data={"phrase": phrase}).status_code == 303
    yield admin
    admin.close()


def test_whole_words_in_any_case():
    phrases = ["ICE", "reproductive care"]
    for text in ("ICE-4471", "ice raid", "case ICE2024", "Reproductive-care clinic", "REPRODUCTIVE CARE", "x_ice"):
        assert prohibited_in(phrases, "", text), text
    for text in ("police 24-117", "device theft", "Iceland trip", "practice", "reproductive", "care home"):
        assert prohibited_in(phrases, text, "") is None, text
    with pytest.raises(PhraseRefused, match="1 to 60 characters"):
        clean_phrase("   ")
    with pytest.raises(PhraseRefused, match="at least one letter or digit"):
        clean_phrase("--")


def test_admin_keeps_the_list_audited_and_published(dept, listed):
    page = listed.get("/search/reasons").text
    assert "reproductive care" in page and 'id="prohibited-list"' in page
    again = listed.post("/search/purposes", data={"phrase": "ice"}, headers={"HX-Request": "true"})
    assert again.status_code == 422 and "on the list already" in again.text
    assert [line["phrase"] for line in audit(dept, "prohibited_purpose.add")] == [
        "ICE", "immigration", "reproductive care"]
    report = httpx.get(f"{dept.live.url}/transparency.json").json()
    assert report["policy"]["prohibited_purposes"] == ["ICE", "immigration", "reproductive care"]
    assert '<li>reproductive care</li>' in httpx.get(f"{dept.live.url}/transparency").text
    officer = Officer(dept.live.url)
    assert officer.post("/search/purposes", {"phrase": "protest"}).status_code == 403  # admins only
    officer.http.close()
    ice = next(p for p in (listed.get("/search/reasons").text.split('action="/search/purposes/')[1:])
               if ">Remove</button>" in p and 'aria-label="Remove ICE"' in p)
    assert listed.post(f"/search/purposes/{ice.split('/')[0]}/remove").status_code == 303
    assert [line["phrase"] for line in audit(dept, "prohibited_purpose.remove")] == ["ICE"]
    assert listed.post("/search/purposes/999/remove").status_code == 404


def test_searches_naming_a_prohibited_purpose_are_refused_and_audited(dept, listed):
    assert dept.post_read("7ABC123").status_code == 201
    officer = Officer(dept.live.url)
    refused = officer.search(plate="7ABC123", case="ICE-2291")
    assert refused.status_code == 422 and f"{DEPARTMENT}&#39;s rule forbids" in refused.text
    assert "“ICE”" in refused.text and 'data-plate="7ABC123"' not in refused.text  # nothing searched
    noted = officer.search(plate="7ABC123", case="24-118", note="Reproductive-care clinic visitor")
    history = officer.post("/plates/7ABC123", {"reason": "1", "case": "immigration hold"})
    more = officer.post("/search/more", {"reason": "1", "case": "ice", "plate": "7ABC123", "search": "1",
                                         "after": "1:1", "shown": "1"})
    assert (noted.status_code, history.status_code, more.status_code) == (422, 422, 422)
    assert "“immigration”" in history.text and "“reproductive care”" in noted.text
    allowed = officer.search(plate="7ABC123", case="police-77", note="device theft")  # whole words only
    assert allowed.status_code == 200 and 'data-plate="7ABC123"' in allowed.text
    officer.http.close()

    lines = audit(dept, "search.refused")
    assert [(line["asked"], line["prohibited"], line["case"]) for line in lines] == [
        ("search", "ICE", "ICE-2291"), ("search", "reproductive care", "24-118"),
        ("plate.history", "immigration", "immigration hold"), ("search.more", "ICE", "ice")]
    assert lines[0]["actor"] == "alice" and lines[0]["terms"]["plate"] == "7ABC123"
    assert lines[0]["reason"] == reason_label(dept) and lines[1]["note"] == "Reproductive-care clinic visitor"
    [search] = audit(dept, "search")  # only the allowed one ran
    assert (search["case"], search["note"]) == ("police-77", "device theft")


def test_access_log_holds_every_search_with_the_required_fields(dept, listed, capsys):
    assert dept.post_read("7ABC123").status_code == 201
    officer = Officer(dept.live.url)
    assert officer.search(plate="7ABC*", case="24-00117", note="stolen blue sedan").status_code == 200
    assert officer.post("/plates/7ABC123", {"reason": "1", "case": "24-00117"}).status_code == 200
    assert officer.search(plate="7ABC123", case="ICE-2291").status_code == 422
    officer.http.close()
    today = datetime.now(UTC).date().isoformat()
    capsys.readouterr()
    assert run_cli(dept.settings, "report", "access-log", "--from", today, "--to", today, "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(row["what"], row["refused"]) for row in rows] == [
        ("search", "no"), ("plate history", "no"), ("search", "yes")]
    label = reason_label(dept)
    for row in rows:
        assert datetime.fromisoformat(row["date_time"]).date().isoformat() == today
        assert (row["username"], row["organisation"], row["reason"]) == ("alice", DEPARTMENT, label)
    search, history, refused = rows
    assert (search["case_number"], search["note"], search["results"]) == ("24-00117", "stolen blue sedan", "1")
    assert search["query_terms"].startswith("plate=7ABC* from=") and " to=" in search["query_terms"]
    assert (history["query_terms"], history["case_number"]) == ("plate=7ABC123", "24-00117")
    assert (refused["prohibited_purpose"], refused["case_number"], refused["results"]) == ("ICE", "ICE-2291", "")
    assert refused["query_terms"] == "plate=7ABC123"

    assert run_cli(dept.settings, "report", "access-log", "--from", today, "--to", today, "--format", "text") == 0
    text = capsys.readouterr().out
    assert f"Access log: {DEPARTMENT}" in text and "REFUSED (prohibited purpose: ICE) search: plate=7ABC123" in text
    assert text.rstrip().endswith("3 entries")
