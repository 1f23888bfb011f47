"""Classify a stream of JSON lines, for the command line and batch jobs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TextIO

from app.moderation.interface import CATEGORIES, Moderator


def classify_jsonl(
    moderator: Moderator, lines: Iterable[str], out: TextIO, *, batch_size: int = 32
) -> int:
    """Read ``{"text": "..."}`` lines, write one ``{"scores": ..., "flagged": [...]}`` line each.

    Blank lines are skipped; line numbers in errors count every line, from 1. A line that is
    not a JSON object with a string ``text`` raises ValueError naming its number, before any
    text of its batch is classified. Texts go to the moderator ``batch_size`` at a time, and
    results are written in input order. Returns the number of lines written.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    written = 0
    texts = _texts(lines)
    while batch := list(islice(texts, batch_size)):
        for result in moderator.classify(batch):
            record = {
                "scores": {c: result.scores[c] for c in CATEGORIES if c in result.scores},
                "flagged": sorted(result.flagged),
            }
            out.write(json.dumps(record) + "\n")
            written += 1
    return written


def _texts(lines: Iterable[str]) -> Iterator[str]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ValueError(f'line {number}: expected a JSON object with a string "text"')
        yield record["text"]
