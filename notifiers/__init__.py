"""Delivery channels for notices, and the templates they render.

The engine renders a notice with :class:`Renderer`, wraps the parts in a :class:`Message`
and hands it to the channel named by ``message.channel`` (from :func:`build_channels`).
``send`` returns when delivered or raises :class:`DeliveryError` (``permanent`` or not).
"""

from notifiers.config import build_channels, build_renderer
from notifiers.message import (
    CHANNEL_NAMES,
    KINDS,
    Attachment,
    Channel,
    DeliveryError,
    Message,
)
from notifiers.render import Rendered, Renderer, RenderError

__all__ = [
    "CHANNEL_NAMES",
    "KINDS",
    "Attachment",
    "Channel",
    "DeliveryError",
    "Message",
    "RenderError",
    "Rendered",
    "Renderer",
    "build_channels",
    "build_renderer",
]
