"""Per-model call limits: a concurrency cap plus optional requests- and tokens-per-minute budgets.

Providers throttle per model; pacing calls on our side keeps 429s (and their back-off) rare.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class TokenBucket:
    """Refills `per_minute` units a minute, holding at most one second's worth (at least 1).

    A request larger than the bucket waits for a full bucket and then passes alone.
    """

    def __init__(self, per_minute: float) -> None:
        if per_minute <= 0:
            raise ValueError("a per-minute limit must be positive")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self._level = self.capacity
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
        self._stamp = now

    async def take(self, amount: float = 1.0) -> None:
        """Wait until `amount` units are available, then spend them (first come, first served)."""
        need = min(amount, self.capacity)
        async with self._lock:
            self._refill()
            while self._level < need:
                await asyncio.sleep((need - self._level) / self.rate)
                self._refill()
            self._level -= need


class CallLimits:
    """What a model call must pass before it is sent: concurrency slot, RPM, TPM."""

    def __init__(
        self,
        max_concurrency: int | None = None,
        rpm: float | None = None,
        tpm: float | None = None,
    ) -> None:
        self.max_concurrency = max_concurrency
        self.rpm = rpm
        self.tpm = tpm
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._requests: TokenBucket | None = None
        self._tokens: TokenBucket | None = None

    def _bind(self) -> None:
        """Make the primitives for the running loop (asyncio primitives belong to one loop)."""
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        self._loop = loop
        self._slots = asyncio.Semaphore(self.max_concurrency) if self.max_concurrency else None
        self._requests = TokenBucket(self.rpm) if self.rpm else None
        self._tokens = TokenBucket(self.tpm) if self.tpm else None

    @asynccontextmanager
    async def slot(self, tokens: int = 0) -> AsyncIterator[None]:
        """Hold one call slot for the body; `tokens` is the estimated prompt + max completion."""
        self._bind()
        slots, requests, budget = self._slots, self._requests, self._tokens
        if slots is not None:
            await slots.acquire()
        try:
            if requests is not None:
                await requests.take(1)
            if budget is not None and tokens > 0:
                await budget.take(tokens)
            yield
        finally:
            if slots is not None:
                slots.release()
