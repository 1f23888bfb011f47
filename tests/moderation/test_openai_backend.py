"""The openai backend with the real SDK against a real HTTP endpoint on 127.0.0.1.

The SDK sends its requests through httpx2, which respx cannot intercept; a small threaded
http.server that answers in the moderation API's own response format is the honest stand-in.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.moderation import CATEGORIES, ModerationUnavailable, build_moderator

API_KEY = "sk-test-not-a-real-key"
MODEL = "omni-moderation-2024-09-26"


def moderation_result(text: str) -> dict:
    """One entry of ``results`` as the API returns it: every category, scores for each."""
    scores = {name: 0.0001 for name in CATEGORIES}
    if "kill" in text:
        scores.update({"violence": 0.93, "harassment/threatening": 0.81, "harassment": 0.64})
    categories = {name: scores[name] > 0.5 for name in CATEGORIES}
    applied = {
        name: ["text", "image"]
        if name.startswith(("self-harm", "sexual", "violence"))
        else ["text"]
        for name in CATEGORIES
    }
    return {
        "flagged": any(categories.values()),
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": applied,
    }


@dataclass
class Stub:
    """What the endpoint will do with each request, in order, and what it received."""

    plan: list[tuple] = field(default_factory=list)  # ("ok",) | ("status", code) | ("sleep", s)
    requests: list[dict] = field(default_factory=list)
    results_for: Callable[[str], dict] | None = None
    drop_results: int = 0
    released: threading.Event = field(default_factory=threading.Event)
    url: str = ""


def _handler(stub: Stub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the test output clean
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            stub.requests.append(
                {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                }
            )
            action = stub.plan.pop(0) if stub.plan else ("ok",)
            try:
                if action[0] == "sleep":
                    stub.released.wait(action[1])
                    self._send(200, self._success(body))
                elif action[0] == "status":
                    error = {
                        "error": {
                            "message": "stub says no",
                            "type": "server_error",
                            "param": None,
                            "code": None,
                        }
                    }
                    # A server-directed short delay keeps the SDK's backoff from slowing tests.
                    self._send(action[1], error, {"retry-after-ms": "10"})
                else:
                    self._send(200, self._success(body))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout test); nothing to answer

        def _success(self, body: dict) -> dict:
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            results = stub.results_for or moderation_result
            return {
                "id": f"modr-{len(stub.requests)}",
                "model": MODEL,
                "results": [results(text) for text in inputs][stub.drop_results :],
            }

        def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def stub() -> Iterator[Stub]:
    state = Stub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    state.released.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def moderator(stub: Stub, **overrides):
    options = {
        "openai_api_key": API_KEY,
        "openai_base_url": stub.url,
        "timeout": 2.0,
        "max_retries": 2,
    }
    return build_moderator("openai", **{**options, **overrides})


def test_several_texts_in_one_request(stub):
    results = moderator(stub).classify(["hello there", "I will kill you", "nice weather"])

    assert len(stub.requests) == 1
    assert [r.backend for r in results] == ["openai"] * 3
    assert {r.model for r in results} == {MODEL}
    assert results[0].flagged == frozenset()
    assert results[1].flagged == {"violence", "harassment/threatening", "harassment"}
    assert results[1].scores["violence"] == pytest.approx(0.93)
    assert results[2].flagged == frozenset()
    assert set(results[0].scores) == set(CATEGORIES)  # slash names, as CATEGORIES spells them


def test_request_carries_key_model_and_input_list(stub):
    moderator(stub, openai_model="omni-moderation-latest").classify(["a", "b"])

    (request,) = stub.requests
    assert request["path"] == "/v1/moderations"
    assert request["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert request["body"] == {"model": "omni-moderation-latest", "input": ["a", "b"]}


def test_long_batches_are_chunked_and_order_kept(stub):
    from app.moderation.openai_backend import OpenAIModerator

    client = OpenAIModerator(api_key=API_KEY, base_url=stub.url, chunk_size=2)
    texts = ["one", "kill two", "three", "four", "kill five"]

    results = client.classify(texts)

    assert [len(r["body"]["input"]) for r in stub.requests] == [2, 2, 1]
    assert ["violence" in r.flagged for r in results] == [False, True, False, False, True]


def test_rate_limit_is_retried(stub):
    stub.plan = [("status", 429)]

    results = moderator(stub).classify(["kill it"])

    assert len(stub.requests) == 2
    assert "violence" in results[0].flagged


def test_persistent_server_error_is_unavailable_after_retries(stub):
    stub.plan = [("status", 500)] * 3

    with pytest.raises(ModerationUnavailable, match="HTTP 500 after retries"):
        moderator(stub, max_retries=2).classify(["anything"])
    assert len(stub.requests) == 3


def test_refusal_is_unavailable_without_retry(stub):
    stub.plan = [("status", 400)]

    with pytest.raises(ModerationUnavailable, match="HTTP 400"):
        moderator(stub).classify(["anything"])
    assert len(stub.requests) == 1


def test_timeout_is_unavailable(stub):
    stub.plan = [("sleep", 5.0)]

    with pytest.raises(ModerationUnavailable, match="timed out"):
        moderator(stub, timeout=0.2, max_retries=0).classify(["slow"])
    assert len(stub.requests) == 1


def test_unreachable_endpoint_is_unavailable():
    client = build_moderator(
        "openai",
        openai_api_key=API_KEY,
        openai_base_url=f"http://127.0.0.1:{unused_port()}/v1",
        timeout=0.5,
        max_retries=0,
    )
    with pytest.raises(ModerationUnavailable, match="unreachable"):
        client.classify(["x"])


def test_wrong_number_of_results_is_unavailable(stub):
    stub.drop_results = 1

    with pytest.raises(ModerationUnavailable, match="1 results for 2 inputs"):
        moderator(stub).classify(["one", "two"])


def test_categories_an_older_model_does_not_score_are_left_out(stub):
    def older(text: str) -> dict:
        result = moderation_result(text)
        for name in ("illicit", "illicit/violent"):
            result["categories"][name] = None
            result["category_scores"][name] = None
            result["category_applied_input_types"].pop(name)
        return result

    stub.results_for = older

    (result,) = moderator(stub).classify(["hi"])

    assert "illicit" not in result.scores and "illicit/violent" not in result.scores
    assert len(result.scores) == len(CATEGORIES) - 2


def test_empty_input_sends_nothing(stub):
    assert moderator(stub).classify([]) == []
    assert stub.requests == []


def test_key_is_not_in_repr(stub):
    assert API_KEY not in repr(moderator(stub))


def unused_port() -> int:
    """A loopback port with nothing listening on it (bound, read, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
