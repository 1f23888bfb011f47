"""The OpenAPI document describes the intake and staff endpoints as they behave."""

from __future__ import annotations


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
