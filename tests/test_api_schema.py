"""The OpenAPI schema at /schema tells a client everything it needs: the request bodies (POST
/api/v1/reads takes JSON or multipart), the answers each route really gives, and who may call it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx
import jsonschema_rs

from tests.test_ingest import jpeg


def api_schema(live) -> dict:
    resp = httpx.get(f"{live.url}/schema/openapi.json")
    assert resp.status_code == 200
    return resp.json()


def reads_body(schema: dict) -> dict:
    return schema["paths"]["/api/v1/reads"]["post"]["requestBody"]


def test_reads_schema_has_a_json_and_a_multipart_request_body(live):
    body = reads_body(api_schema(live))
    assert body["required"] is True
    json_schema = body["content"]["application/json"]["schema"]
    assert set(json_schema["required"]) == {"id", "plate", "confidence", "captured_at"}
    assert json_schema["additionalProperties"] is False  # unknown fields are refused by name
    form = body["content"]["multipart/form-data"]
    assert form["schema"]["required"] == ["read"]
    assert form["schema"]["properties"]["read"] == json_schema  # the same read, as a JSON field
    assert form["encoding"]["read"]["contentType"] == "application/json"
    for image in ("plate_image", "vehicle_image"):
        assert form["schema"]["properties"][image]["contentMediaType"] == "image/jpeg"
        assert form["encoding"][image]["contentType"] == "image/jpeg"


# The answers each operation really gives, by path and method.
EXPECTED_ANSWERS = {
    ("/api/v1/reads", "post"): {"200", "201", "400", "401", "413", "415"},
    ("/api/v1/cameras/heartbeat", "post"): {"200", "400", "401", "413"},
    ("/api/v1/auth/token", "post"): {"200", "400", "401", "403", "413", "429"},
    ("/api/v1/push/key", "get"): {"200"},
    ("/api/v1/push/subscriptions", "post"): {"201", "400", "401", "403", "413"},
    ("/api/v1/push/unsubscribe", "post"): {"200", "400", "401", "403", "413"},
    ("/api/v1/duty", "post"): {"200", "400", "401", "403", "413"},
    ("/api/v1/alerts", "get"): {"200", "400", "401", "403"},
    ("/api/v1/alerts/{alert_id}", "get"): {"200", "400", "401", "403", "404"},
    ("/api/v1/alerts/{alert_id}", "patch"): {"200", "400", "401", "403", "404", "409", "413"},
    ("/transparency.json", "get"): {"200", "404"},  # 404 where the department keeps it private
}


def test_schema_documents_every_answer_with_litestars_error_body(live):
    paths = api_schema(live)["paths"]
    documented = {(path, method): set(paths[path][method]["responses"]) for path, method in EXPECTED_ANSWERS}
    assert documented == EXPECTED_ANSWERS
    for path, method in EXPECTED_ANSWERS:
        for code, response in paths[path][method]["responses"].items():
            if code.startswith("4"):
                error = response["content"]["application/json"]["schema"]
                assert set(error["required"]) == {"status_code", "detail"}, (path, method, code)
                assert set(error["properties"]) == {"status_code", "detail", "extra"}, (path, method, code)


def test_schema_says_which_token_each_operation_takes(live):
    schema = api_schema(live)
    schemes = schema["components"]["securitySchemes"]
    assert schemes["camera"]["scheme"] == schemes["user"]["scheme"] == "bearer"
    assert schema["paths"]["/api/v1/reads"]["post"]["security"] == [{"camera": []}]
    assert schema["paths"]["/api/v1/cameras/heartbeat"]["post"]["security"] == [{"camera": []}]
    assert schema["paths"]["/api/v1/alerts/{alert_id}"]["patch"]["security"] == [{"user": []}]
    assert "security" not in schema["paths"]["/api/v1/auth/token"]["post"]


def a_read() -> dict:
    """What a client writes, knowing only the schema's field names."""
    return {"id": str(uuid.uuid4()), "plate": "8ABC123", "confidence": 0.93,
            "captured_at": datetime.now(UTC).isoformat(), "candidates": [{"plate": "8ABC128", "confidence": 0.4}],
            "color": "blue", "box": {"x": 10, "y": 20, "w": 120, "h": 40}}


def test_a_client_built_from_the_schema_posts_a_json_read(dept):
    body = reads_body(api_schema(dept.live))["content"]["application/json"]
    validator = jsonschema_rs.validator_for(body["schema"])
    read = a_read()
    validator.validate(read)
    assert not validator.is_valid({**read, "speed": 40})  # the schema refuses what the server refuses
    resp = dept.http.post("/api/v1/reads", json=read, headers=dept.camera_headers)
    assert resp.status_code == 201, resp.text


def test_a_client_built_from_the_schema_posts_a_multipart_read(dept):
    form = reads_body(api_schema(dept.live))["content"]["multipart/form-data"]
    read = a_read()
    jsonschema_rs.validator_for(form["schema"]["properties"]["read"]).validate(read)
    files = {"plate_image": ("plate.jpg", jpeg(), form["encoding"]["plate_image"]["contentType"])}
    resp = dept.http.post("/api/v1/reads", data={"read": json.dumps(read)}, files=files, headers=dept.camera_headers)
    assert resp.status_code == 201, resp.text


def test_options_on_an_alert_lists_get_and_patch(dept):
    # Litestar 2 answers OPTIONS on a path whose handlers are registered one by one with the
    # first handler's methods only (litestar-org/litestar#4169).
    resp = dept.http.options("/api/v1/alerts/1", headers=dept.user_headers)
    assert resp.status_code == 204
    assert resp.headers["allow"] == "GET, OPTIONS, PATCH"
