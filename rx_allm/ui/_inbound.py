"""What both browser protocols read back the same way: a user's images, and the provider data
our streams sent along (:data:`METADATA_KEY`), each checked with a one-line refusal."""

from __future__ import annotations

from base64 import b64decode
from typing import Any

import pydantic

from rx_allm.models import Reasoning
from rx_allm.ui.request_body import refuse

#: The key our streams put what a provider needs back under (a reasoning's
#: :class:`~rx_allm.models.Reasoning` fields — signature, redacted data, item id, encrypted
#: content, provider —, a ``ToolCall.metadata``, a step's ``Message.metadata``).
METADATA_KEY = "rx_allm"
#: The file types a user message may carry: the images OpenAI and Anthropic both take
#: (Gemini documents no GIF: it answers for that one itself).
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def image_part(url: str, media_type: str | None, type_at: str, url_at: str) -> dict[str, Any]:
    """The library's image part for ``url`` (base64 ``data:``, ``http:`` or ``https:``).

    ``media_type`` is what the client says the file is (``None``: a ``data:`` URL's own
    type; not checked for an ``http(s):`` URL, which the provider fetches); anything but
    :data:`IMAGE_TYPES` is refused at ``type_at``, an unusable URL at ``url_at``.
    """
    scheme = url.partition(":")[0].lower()
    head, _, data = url[len("data:") :].partition(",")
    if media_type is None and scheme == "data":
        media_type = head.partition(";")[0] or "text/plain"
    if media_type is not None and media_type.lower() not in IMAGE_TYPES:
        raise refuse(
            type_at,
            f"cannot send a file of type {media_type.lower()} to the model: "
            f"images only ({', '.join(IMAGE_TYPES)})",
        )
    if scheme in ("http", "https"):
        return {"type": "image_url", "image_url": {"url": url}}
    if scheme != "data":
        raise refuse(url_at, f"a {scheme}: URL cannot be sent: data:, http: or https: only")
    try:
        if "base64" not in head.lower().split(";"):
            raise ValueError
        b64decode(data, validate=True)
    except ValueError:  # binascii.Error included
        raise refuse(url_at, "not a base64 data: URL") from None
    # The client's media type names the image (a data: URL's own may be application/octet-stream).
    return {"type": "image_url", "image_url": {"url": f"data:{str(media_type).lower()};base64,{data}"}}


def kept_data(value: Any, at: str) -> dict[str, Any]:
    """``value`` (provider data found under our key at ``at``), which must be a JSON object."""
    if not isinstance(value, dict):
        raise refuse(at, "not a JSON object")
    return value


def restored_reasoning(data: dict[str, Any], text: str, at: str) -> Reasoning:
    """The :class:`~rx_allm.models.Reasoning` of ``text`` and the provider ``data`` sent along at ``at``."""
    try:
        return Reasoning.model_validate({**data, "text": text})
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise refuse(f"{at}.{where}", first["msg"].lower()) from None
