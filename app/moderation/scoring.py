"""The local classifier's arithmetic: from features to per-category probabilities.

A score is built in four steps, each kept small enough to read:

1. *Base models*: per category, a logistic-regression head on the mean-pooled embedding, one on
   the max-pooled embedding, one on hashed n-gram TF-IDF, plus the cosine to a few written
   descriptions of the category ("anchors"; zero-shot, nothing fitted).
2. *Rank blend*: each base score becomes its percentile among the out-of-fold training scores of
   that model, and the percentiles are averaged with fixed weights. Ranks put heads with very
   different scales on one footing (the README's rank-averaged baseline, extended).
3. *Hierarchy*: a child category implies its parents in this data (every sexual/minors text is
   sexual, every hate/threatening text is hate, every violence/graphic text is violence). So a
   child also gets ``log P(parents) + log P(child | first parent)``, where the conditional head
   was trained only on the parent's positives; its percentile joins the child's blend. This is
   where the categories with 11-42 positives gain most.
4. *Calibration*: a per-category Platt scaling of the blend, fitted on out-of-fold blends, turns
   it into a probability; a text is flagged when that probability reaches the category's
   threshold.

The parameters live in ``model.npz`` (arrays) and ``model.json`` (names, weights, metadata);
no pickle.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

#: Heads fitted on features, in the order their arrays are stored.
FITTED_MODELS = ("mean", "max", "ngram")
#: All base models whose percentiles are blended.
BASE_MODELS = (*FITTED_MODELS, "anchor")
HIERARCHY = "hierarchy"
ARRAYS_FILE = "model.npz"
METADATA_FILE = "model.json"


@dataclass(frozen=True)
class Features:
    """What the base models read, one row per text."""

    mean: np.ndarray  # (n, 384) unit rows
    max: np.ndarray  # (n, 384) unit rows
    ngram: sparse.csr_matrix  # (n, 2 * n_features) TF-IDF rows
    anchor: np.ndarray  # (n, k) best anchor cosine per output

    def __len__(self) -> int:
        return self.mean.shape[0]

    def rows(self, index: np.ndarray) -> Features:
        return Features(self.mean[index], self.max[index], self.ngram[index], self.anchor[index])


@dataclass(frozen=True)
class LinearHead:
    """Several binary logistic-regression heads sharing one input: ``X @ coef.T + intercept``."""

    coef: np.ndarray  # (heads, dim)
    intercept: np.ndarray  # (heads,)

    def decision(self, inputs: np.ndarray | sparse.csr_matrix) -> np.ndarray:
        coef = self.coef.astype(np.float64)
        return np.asarray(inputs @ coef.T) + self.intercept.astype(np.float64)


@dataclass(frozen=True)
class Child:
    """A category implied by its parents; the conditional head is trained given ``parents[0]``."""

    name: str
    parents: tuple[str, ...]


def percentile(raw: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Each column's values as their level (0..1) among the reference quantiles of that column.

    ``references`` is (k, Q): row j holds sorted quantiles of column j's reference scores at
    ``Q`` evenly spaced levels. Beyond the reference range the map goes on linearly with the
    slope of its outer tenth instead of clipping: the texts that matter most lie in the top
    tail, and clipping would tie them all at 1 and lose their order.
    """
    levels = np.linspace(0.0, 1.0, references.shape[1])
    tail = max(1, references.shape[1] // 10)
    out = np.empty(raw.shape, dtype=np.float64)
    for j in range(raw.shape[1]):
        ref = references[j]
        values = raw[:, j]
        out[:, j] = np.interp(values, ref, levels)
        high_slope = (levels[-1] - levels[-1 - tail]) / max(ref[-1] - ref[-1 - tail], 1e-12)
        low_slope = (levels[tail] - levels[0]) / max(ref[tail] - ref[0], 1e-12)
        above, below = values > ref[-1], values < ref[0]
        out[above, j] = 1.0 + (values[above] - ref[-1]) * high_slope
        out[below, j] = (values[below] - ref[0]) * low_slope
    return out


def quantiles(raw: np.ndarray, count: int) -> np.ndarray:
    """The (k, count) reference quantiles of each column of ``raw``, for :func:`percentile`."""
    return np.quantile(raw, np.linspace(0.0, 1.0, count), axis=0).T.copy()


def blend(parts: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """The weighted mean of the percentile arrays named in ``weights``."""
    total = sum(weights.values())
    return sum(weights[name] * parts[name] for name in weights) / total


def platt(scores: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """Per-column ``sigmoid(a * score + b)``; ``coefficients`` is (k, 2) rows of (a, b)."""
    z = scores * coefficients[:, 0] + coefficients[:, 1]
    return 1.0 / (1.0 + np.exp(-z))


def hierarchy_raw(parent_probabilities: np.ndarray, conditional_decision: np.ndarray) -> np.ndarray:
    """``sum log P(parent) + log P(child | parent)`` from parents' probabilities and the
    conditional head's logit; both inputs have one column per child (parents already summed
    into a product)."""
    floor = 1e-12
    return np.log(np.maximum(parent_probabilities, floor)) - np.logaddexp(
        0.0, -conditional_decision
    )


@dataclass(frozen=True)
class ScoringModel:
    """Fitted parameters of the local classifier and the function from features to scores."""

    outputs: tuple[str, ...]
    heads: dict[str, LinearHead]
    anchor_vectors: np.ndarray
    anchor_owner: np.ndarray
    references: dict[str, np.ndarray]  # BASE_MODELS over all outputs; HIERARCHY over children
    weights: dict[str, float]  # BASE_MODELS and HIERARCHY
    children: tuple[Child, ...]
    conditional: LinearHead  # one row per child, reads the mean embedding
    calibration: np.ndarray  # (k, 2)
    thresholds: np.ndarray  # (k,)
    word_idf: np.ndarray
    char_idf: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def raw_scores(self, features: Features) -> dict[str, np.ndarray]:
        """Each base model's raw score, (n, k) per model."""
        raw = {name: self.heads[name].decision(getattr(features, name)) for name in FITTED_MODELS}
        raw["anchor"] = features.anchor
        return raw

    def probabilities(self, features: Features) -> np.ndarray:
        """Calibrated probabilities, (n, k) in the order of ``outputs``."""
        raw = self.raw_scores(features)
        parts = {name: percentile(raw[name], self.references[name]) for name in BASE_MODELS}
        base_weights = {name: self.weights[name] for name in BASE_MODELS}
        probabilities = platt(blend(parts, base_weights), self.calibration)
        if not self.children:
            return probabilities
        child_columns = [self.outputs.index(child.name) for child in self.children]
        hier = percentile(
            hierarchy_raw(
                self.parent_product(probabilities),
                self.conditional.decision(features.mean),
            ),
            self.references[HIERARCHY],
        )
        child_parts = {name: parts[name][:, child_columns] for name in BASE_MODELS}
        child_parts[HIERARCHY] = hier
        probabilities[:, child_columns] = platt(
            blend(child_parts, self.weights), self.calibration[child_columns]
        )
        return probabilities

    def parent_product(self, probabilities: np.ndarray) -> np.ndarray:
        """For each child, the product of its parents' probabilities: (n, children)."""
        return np.column_stack(
            [
                np.prod([probabilities[:, self.outputs.index(p)] for p in child.parents], axis=0)
                for child in self.children
            ]
        )

    def save(self, directory: Path) -> None:
        """Write ``model.npz`` and ``model.json`` into ``directory`` (deterministic bytes)."""
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "anchor_vectors": self.anchor_vectors.astype(np.float32),
            "anchor_owner": self.anchor_owner.astype(np.int16),
            "conditional_coef": self.conditional.coef.astype(np.float32),
            "conditional_intercept": self.conditional.intercept.astype(np.float64),
            "calibration": self.calibration.astype(np.float64),
            "thresholds": self.thresholds.astype(np.float64),
            "word_idf": self.word_idf.astype(np.float32),
            "char_idf": self.char_idf.astype(np.float32),
        }
        for name, head in self.heads.items():
            # The n-gram head has 131k weights per category; half precision keeps the artifact
            # small and moves scores by far less than the differences between texts.
            dtype = np.float16 if name == "ngram" else np.float32
            arrays[f"{name}_coef"] = head.coef.astype(dtype)
            arrays[f"{name}_intercept"] = head.intercept.astype(np.float64)
        for name, reference in self.references.items():
            arrays[f"reference_{name}"] = reference.astype(np.float64)
        # np.savez_compressed writes zip entries with the current time; fix it for stable bytes.
        _save_npz_deterministic(directory / ARRAYS_FILE, arrays)
        digest = hashlib.sha256((directory / ARRAYS_FILE).read_bytes()).hexdigest()
        document = {
            "arrays_sha256": digest,
            "model_id": f"flagdesk-local-{digest[:12]}",
            "outputs": list(self.outputs),
            "weights": self.weights,
            "children": [{"name": c.name, "parents": list(c.parents)} for c in self.children],
            **self.metadata,
        }
        (directory / METADATA_FILE).write_text(
            json.dumps(document, indent=2, sort_keys=True) + "\n"
        )

    @classmethod
    def load(cls, directory: Path) -> ScoringModel:
        """Read a model written by :meth:`save`."""
        document = json.loads((directory / METADATA_FILE).read_text())
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        heads = {
            name: LinearHead(arrays[f"{name}_coef"].astype(np.float32), arrays[f"{name}_intercept"])
            for name in FITTED_MODELS
        }
        children = tuple(Child(c["name"], tuple(c["parents"])) for c in document["children"])
        references = {
            name: arrays[f"reference_{name}"]
            for name in (*BASE_MODELS, HIERARCHY)
            if f"reference_{name}" in arrays
        }
        metadata = {
            key: value
            for key, value in document.items()
            if key not in ("outputs", "weights", "children")
        }
        return cls(
            outputs=tuple(document["outputs"]),
            heads=heads,
            anchor_vectors=arrays["anchor_vectors"].astype(np.float32),
            anchor_owner=arrays["anchor_owner"].astype(np.int64),
            references=references,
            weights={name: float(w) for name, w in document["weights"].items()},
            children=children,
            conditional=LinearHead(arrays["conditional_coef"], arrays["conditional_intercept"]),
            calibration=arrays["calibration"],
            thresholds=arrays["thresholds"],
            word_idf=arrays["word_idf"],
            char_idf=arrays["char_idf"],
            metadata=metadata,
        )


def _save_npz_deterministic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.save(buffer, arrays[name], allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())
