"""The request bodies the API accepts, as pydantic models (FastAPI validates and documents them).

They follow OpenAI's chat completions API: fields aeth does not use are accepted and ignored,
as OpenAI-compatible servers do, so an unchanged client works.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: the most alternatives one request may ask for (``n``)
MAX_N = 8
#: the most stop strings (OpenAI's limit)
MAX_STOP = 4


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ImageURL(BaseModel):
    url: str = Field(description="A data URL (data:image/png;base64,...); aeth fetches nothing from the network.")
    detail: str | None = None


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: ImageURL


Part = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class Message(BaseModel):
    """One turn: ``system`` (or ``developer``), ``user`` or ``assistant``."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[Part] | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``. ``model``: ``aeth`` (routed), a specialist's name,
    ``SPECIALIST@VERSION`` (that adapter version, or ``@base`` for none), or ``general``."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1, max_length=200)
    messages: list[Message] = Field(min_length=1, max_length=10_000)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    max_completion_tokens: int | None = Field(None, ge=1, le=1_000_000)
    seed: int | None = Field(None, ge=-(2**63), le=2**64 - 1)
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=MAX_N)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(None, max_length=256)

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return tuple(s for s in ([self.stop] if isinstance(self.stop, str) else self.stop) if s)


class FeedbackBody(BaseModel):
    """Feedback on an answer (stored for continuous learning)."""

    model_config = ConfigDict(extra="ignore")
    interaction: str = Field(min_length=1, max_length=64)
    kind: Literal["thumbs", "rating", "correction", "preference", "comment"]
    value: Any = None
    comment: str | None = Field(None, max_length=20_000)
    id: str | None = Field(None, min_length=1, max_length=64, description="Your id for this feedback: a retry with the same id stores it once.")
