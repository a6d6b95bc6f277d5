"""Property-based fuzz of the whole JSON API from its own OpenAPI schema (schemathesis): every
operation at /schema gets generated requests, valid and invalid, against the real server, with the
token its `security` names. No answer may be a 5xx, and every answer must be one the schema
documents, with the content type and body the schema gives it.

Bounded and reproducible for CI: a fixed number of examples per operation, derandomized (the same
requests on every run), no example database. Hypothesis drives schemathesis's strategies directly:
schemathesis's own pytest loader does not run under pytest 9."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance, not_a_server_error, response_schema_conformance, status_code_conformance,
)

HOTLIST = "plate,state,reason\n8ABC123,CA,Stolen\n7XYZ555,CA,Wanted\n"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 100  # about 40 s for the whole API on a busy 2-core box
# No per-example deadline and no health checks: on a shared CI box they time the machine, not the API.
FUZZ = settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck), print_blob=False)


@pytest.fixture
def api(dept, tmp_path):
    """The schema the server serves, loaded from it; alerts exist to list, show and patch."""
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    for plate in ("8ABC123", "7XYZ555", "8ABC123"):
        assert dept.post_read(plate).status_code == 201
    return schemathesis.openapi.from_url(f"{dept.live.url}/schema/openapi.json")


def bearer_for(operation, dept) -> dict[str, str]:
    """The token the operation's `security` names, as a client built from the schema would send.
    Wrong passwords the fuzz sends to /api/v1/auth/token may lock a username out for a while, but
    never end a token already issued: alice's stays good throughout."""
    [requirement] = operation.definition.raw.get("security") or [{}]
    return {"camera": dept.camera_headers, "user": dept.user_headers}.get(next(iter(requirement), ""), {})


def fuzz_failure(operation, headers: dict[str, str]) -> BaseException | None:
    """What the fuzz found wrong with one operation (Hypothesis's shrunk example), or None."""
    requests = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @FUZZ
    @given(case=requests)
    def answers_as_documented(case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=10)

    try:
        answers_as_documented()
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis's FailureGroup is a BaseExceptionGroup
        return exc
    return None


def format_notes(failure: BaseException) -> str:
    """Schemathesis's account of a failure (what was checked, the answer, a curl line to reproduce it)."""
    return "\n".join([str(failure), *getattr(failure, "__notes__", [])])


def test_api_answers_as_its_schema_says(api, dept):
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/v1/reads", "/api/v1/alerts/{alert_id}", "/api/v1/auth/token"}
    failures = {op.label: fuzz_failure(op, bearer_for(op, dept)) for op in operations}
    found = {label: failure for label, failure in failures.items() if failure is not None}
    assert not found, "\n\n".join(f"{label}:\n{format_notes(failure)}" for label, failure in found.items())


# Regressions the fuzz found, each pinned by a focused test.

def test_a_heartbeat_count_beyond_sqlite_integers_is_refused_by_name(dept):
    """frames_gated of 2**63 (as in {"frames_gated": 19748355587977435414528}) overflowed SQLite's
    64-bit INTEGER: a 500 where the camera deserved a 400 naming the field."""
    beat = {"frames_per_s": 1.0, "frames_gated": 2**63}
    resp = dept.http.post("/api/v1/cameras/heartbeat", json=beat, headers=dept.camera_headers)
    assert resp.status_code == 400 and "frames_gated" in resp.text, resp.text
    beat["frames_gated"] = 2**63 - 1  # the largest count SQLite keeps is still taken
    assert dept.http.post("/api/v1/cameras/heartbeat", json=beat, headers=dept.camera_headers).status_code == 200
