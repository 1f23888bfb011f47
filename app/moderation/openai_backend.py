"""The hosted moderation backend: OpenAI's moderation endpoint through the official SDK."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.moderation.interface import CATEGORIES, Classification, ModerationUnavailable

if TYPE_CHECKING:
    import openai

#: Texts per request. The endpoint takes a list of inputs; a moderate chunk keeps each request
#: small enough to finish well inside the timeout and a failure cheap to retry.
DEFAULT_CHUNK_SIZE = 32


class OpenAIModerator:
    """Classifies with ``client.moderations.create``; the client is built on first use.

    The SDK retries connection errors, timeouts, 408/409/429 and 5xx answers ``max_retries``
    times with exponential backoff (honouring ``Retry-After``); whatever still fails after that
    becomes ModerationUnavailable, as does a refusal (any other 4xx) or a malformed answer.
    """

    backend = "openai"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        model: str = "omni-moderation-latest",
        timeout: float = 10.0,
        max_retries: int = 3,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if not api_key:
            raise ValueError("the openai moderation backend needs an API key")
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.api_key = api_key
        self.base_url = base_url
        self.model = model
        self.timeout = timeout
        self.max_retries = max_retries
        self.chunk_size = chunk_size
        self._lock = threading.Lock()
        self._client: openai.OpenAI | None = None

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIModerator(model={self.model!r}, base_url={self.base_url!r})"

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        """One Classification per text, in order; one request per ``chunk_size`` texts."""
        texts = list(texts)
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {index} is {type(text).__name__}, not str")
        results: list[Classification] = []
        for start in range(0, len(texts), self.chunk_size):
            results.extend(self._classify_chunk(texts[start : start + self.chunk_size]))
        return results

    def _classify_chunk(self, texts: list[str]) -> list[Classification]:
        import openai

        try:
            response = self._get_client().moderations.create(model=self.model, input=texts)
        except openai.APITimeoutError as error:
            raise ModerationUnavailable(
                f"OpenAI moderation timed out after {self.timeout} s ({self.max_retries} retries)"
            ) from error
        except openai.APIConnectionError as error:
            raise ModerationUnavailable(f"OpenAI moderation unreachable: {error}") from error
        except openai.APIStatusError as error:
            raise ModerationUnavailable(
                f"OpenAI moderation answered HTTP {error.status_code}"
                f"{' after retries' if _retryable(error.status_code) else ''}: "
                f"{_short(error.message)}"
            ) from error
        except openai.APIError as error:  # e.g. a body that does not parse
            raise ModerationUnavailable(f"OpenAI moderation failed: {error}") from error
        if len(response.results) != len(texts):
            raise ModerationUnavailable(
                f"OpenAI moderation returned {len(response.results)} results "
                f"for {len(texts)} inputs"
            )
        return [_classification(result, response.model) for result in response.results]

    def _get_client(self) -> openai.OpenAI:
        with self._lock:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(
                    api_key=self.api_key,
                    base_url=self.base_url,
                    timeout=self.timeout,
                    max_retries=self.max_retries,
                )
            return self._client


def _classification(result, model: str) -> Classification:
    """Map one ``Moderation`` result onto our categories (API spelling via the aliases)."""
    raw_scores = result.category_scores.model_dump(by_alias=True)
    raw_flags = result.categories.model_dump(by_alias=True)
    # Newer models score more categories than older ones; keep what this one actually scored.
    scores = {
        name: float(raw_scores[name])
        for name in CATEGORIES
        if isinstance(raw_scores.get(name), int | float)
    }
    flagged = frozenset(name for name in scores if raw_flags.get(name) is True)
    return Classification(scores=scores, flagged=flagged, backend="openai", model=model)


def _retryable(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"
