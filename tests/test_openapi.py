"""The OpenAPI document describes the intake and staff endpoints as they behave."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.conftest import report_body


def test_the_document_describes_intake_and_staff_endpoints(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.json
    paths = spec["paths"]
    assert set(paths["/api/v1/reports"]) >= {"post", "get"}
    assert "get" in paths["/api/v1/reports/{public_id}"]
    assert "get" in paths["/api/v1/reports/{public_id}/status"]

    post = paths["/api/v1/reports"]["post"]
    assert {"201", "200", "422"} <= set(post["responses"])
    headers = {p["name"] for p in post["parameters"] if p["in"] == "header"}
    assert {"X-Project-Key", "Idempotency-Key"} <= headers

    intake = spec["components"]["schemas"]["ReportIntake"]
    assert intake["required"] == ["reason"]
    assert intake["properties"]["description"]["maxLength"] == 5000
    assert intake["properties"]["conversation"]["maxItems"] == 20
    assert set(intake["properties"]["reason"]["enum"]) == {
        "harmful_or_offensive", "inaccurate", "biased", "privacy", "unsafe_advice",
        "jailbreak_or_prompt_injection", "other"}
    assert intake.get("additionalProperties") is False

    listing = paths["/api/v1/reports"]["get"]
    query = {p["name"] for p in listing["parameters"] if p["in"] == "query"}
    assert {"project_id", "status", "priority", "category", "flagged", "cursor", "limit"} <= query
    assert listing["security"] == [{"bearerAuth": []}]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_intake_answers_what_the_document_says(client, project):
    """The receipt is written by the view, not dumped through its documented schema: the
    two must agree on every field and its type."""
    spec = client.get("/api/openapi.json").json
    post = spec["paths"]["/api/v1/reports"]["post"]
    documented = spec["components"]["schemas"]["ReportReceipt"]
    assert post["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReportReceipt"}

    response = client.post("/api/v1/reports", json=report_body(),
                           headers={"X-Project-Key": project.public_key})

    assert response.status_code == 201 and response.mimetype == "application/json"
    receipt = response.json
    assert set(receipt) == set(documented["properties"])
    for name, value in receipt.items():
        assert isinstance(value, str), name  # every documented field is a string
    assert receipt["status"] in documented["properties"]["status"]["enum"]
    assert datetime.fromisoformat(receipt["received_at"]).utcoffset() == timedelta(0)


def test_the_document_spells_out_a_turn_and_the_host_context(client):
    intake = client.get("/api/openapi.json").json["components"]["schemas"]["ReportIntake"]
    turn = intake["properties"]["conversation"]["items"]
    assert turn["required"] == ["role", "content"]
    assert turn["additionalProperties"] is False
    assert turn["properties"]["role"]["enum"] == ["user", "assistant", "system", "tool"]
    assert turn["properties"]["content"]["maxLength"] == 8000
    context = intake["properties"]["metadata"]
    assert context["type"] == "object" and context["maxProperties"] == 20
    assert {"type": "string", "maxLength": 500} in context["additionalProperties"]["anyOf"]
