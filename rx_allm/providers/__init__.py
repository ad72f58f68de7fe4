"""Built-in adapters: ``Fake`` (scripted), ``OpenAI``, ``Anthropic``, ``Gemini``."""

from rx_allm.providers.fake import Fake

__all__ = ["Fake"]
