"""Delivery of async results to X-Callback-Url: POST the JSON, retried with exponential backoff."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = ["CallbackSender", "check_callback_url"]

log = logging.getLogger(__name__)


def check_callback_url(url: str) -> str | None:
    """None when `url` can receive callbacks, else why not."""
    try:
        parts = urlsplit(url)
    except ValueError as e:
        return f"X-Callback-Url is not a URL: {e}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "X-Callback-Url must be an absolute http:// or https:// URL"
    return None


class CallbackSender:
    """POSTs a result to a callback URL; retries connection errors, 429 and 5xx replies."""

    def __init__(self, attempts: int = 6, backoff: float = 0.5, timeout: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.attempts = attempts
        self.backoff = backoff
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport, follow_redirects=False)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> bool:
        """True once the receiver answered 2xx; False after the last attempt or a 4xx refusal."""
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                reply = await self._http.post(url, json=body, headers=headers)
            except httpx.HTTPError as e:
                log.info("callback %s attempt %d: %s", url, attempt, e)
            else:
                if 200 <= reply.status_code < 300:
                    log.info("callback %s delivered (attempt %d)", url, attempt)
                    return True
                if reply.status_code < 500 and reply.status_code != 429:
                    log.warning("callback %s refused with %d; not retrying", url, reply.status_code)
                    return False
                log.info("callback %s attempt %d: HTTP %d", url, attempt, reply.status_code)
            if attempt < self.attempts:
                await asyncio.sleep(delay)  # backoff between attempts
                delay *= 2
        log.warning("callback %s failed after %d attempts", url, self.attempts)
        return False
