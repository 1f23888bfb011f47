"""build_moderator, classify_jsonl and the package's purity."""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from app.moderation import (
    CATEGORIES,
    Classification,
    Moderator,
    build_moderator,
    classify_jsonl,
)

PACKAGE = Path(__file__).resolve().parents[2] / "app" / "moderation"


class Recording:
    """A moderator that scores by keyword and records the batches it was given."""

    backend = "fake"

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        self.batches.append(list(texts))
        return [
            Classification(
                scores={"violence": 0.9 if "kill" in t else 0.1, "hate": 0.2, "sexual": 0.7},
                flagged=frozenset({"sexual", "violence"} if "kill" in t else {"sexual"}),
                backend="fake",
                model="fake-1",
            )
            for t in texts
        ]


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown moderation backend 'anthropic'.*local, openai"):
        build_moderator("anthropic")


@pytest.mark.parametrize("key", [None, ""])
def test_openai_needs_a_key(key):
    with pytest.raises(ValueError, match="API key"):
        build_moderator("openai", openai_api_key=key)


def test_built_moderators_follow_the_protocol():
    local = build_moderator("local")
    hosted = build_moderator("openai", openai_api_key="sk-test", timeout=1.0, max_retries=0)
    assert isinstance(local, Moderator) and local.backend == "local"
    assert isinstance(hosted, Moderator) and hosted.backend == "openai"
    assert hosted.timeout == 1.0 and hosted.max_retries == 0
    assert hosted._client is None  # no client until the first call


def test_classify_jsonl_writes_one_line_per_input_in_batches():
    lines = [json.dumps({"text": f"text {i}" + (" kill" if i == 3 else "")}) for i in range(5)]
    out = io.StringIO()
    moderator = Recording()

    written = classify_jsonl(moderator, ["\n", *lines], out, batch_size=2)

    assert written == 5
    assert [len(b) for b in moderator.batches] == [2, 2, 1]
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(records) == 5
    assert records[3] == {
        "scores": {"hate": 0.2, "sexual": 0.7, "violence": 0.9},
        "flagged": ["sexual", "violence"],
    }
    assert all(list(r["scores"]) == [c for c in CATEGORIES if c in r["scores"]] for r in records)
    assert all(r["flagged"] == sorted(r["flagged"]) for r in records)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not json", "line 3: not valid JSON"),
        ('{"prompt": "x"}', 'line 3: expected a JSON object with a string "text"'),
        ('{"text": 7}', 'line 3: expected a JSON object with a string "text"'),
        ('["text"]', 'line 3: expected a JSON object with a string "text"'),
    ],
)
def test_classify_jsonl_names_the_bad_line(bad, message):
    lines = ['{"text": "a"}', '{"text": "b"}', bad, '{"text": "c"}']
    with pytest.raises(ValueError, match=message):
        classify_jsonl(Recording(), lines, io.StringIO())


def test_classify_jsonl_with_the_local_model():
    out = io.StringIO()
    assert classify_jsonl(build_moderator("local"), ['{"text": "hello"}'], out) == 1
    (record,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert set(record) == {"scores", "flagged"}
    assert "illicit" not in record["scores"] and "violence" in record["scores"]


def test_classify_jsonl_empty_input():
    out = io.StringIO()
    assert classify_jsonl(Recording(), [], out) == 0
    assert out.getvalue() == ""


def test_importing_moderation_pulls_in_no_web_or_database_code():
    # `app` is stood in by a bare package so that this checks app.moderation alone, whatever
    # app/__init__.py imports.
    code = (
        "import sys, types\n"
        f"pkg = types.ModuleType('app'); pkg.__path__ = [{str(PACKAGE.parent)!r}]\n"
        "sys.modules['app'] = pkg\n"
        "import app.moderation as m\n"
        "m.build_moderator('local'); m.build_moderator('openai', openai_api_key='k')\n"
        "bad = [n for n in sys.modules if n.split('.')[0] in ('flask', 'sqlalchemy',"
        " 'flask_sqlalchemy')]\n"
        "assert not bad, bad\n"
        "others = [n for n in sys.modules if n.startswith('app.')"
        " and not n.startswith('app.moderation')]\n"
        "assert not others, others\n"
        "assert 'onnxruntime' not in sys.modules, 'model loaded at import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parents[1])


def test_moderation_sources_import_nothing_forbidden():
    forbidden = ("flask", "flask_sqlalchemy", "sqlalchemy")
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"
                if name.startswith("app"):
                    assert name.startswith("app.moderation"), f"{path.name} imports {name}"
