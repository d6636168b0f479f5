"""Offline models: answer with no key and no network, so every pipeline runs anywhere.

`oracle`/`perfect` answer what the stage's oracle hook says; `echo` repeats the prompt;
`flakey` is deterministic chaos for testing error handling (good, garbage or an exception).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson

from masksql_pipe.errors import ModelError
from masksql_pipe.lm.base import (
    Completion,
    Messages,
    Model,
    estimate_tokens,
    last_user_message,
    messages_text,
)


class OfflineModel(Model):
    """Base for offline models: token counts estimated as len(text)//4, latency measured."""

    offline = True

    def __init__(self, name: str) -> None:
        self.name = name

    def settings(self) -> dict[str, Any]:
        """Offline models have no sampling settings: the name fixes the behaviour."""
        return {"model": self.name, "offline": True}

    def _answer(self, messages: Messages, oracle: str | None) -> str:
        raise NotImplementedError

    async def complete(
        self,
        messages: Messages,
        *,
        oracle: str | None = None,
        max_tokens: int | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Completion:
        """Answer at once, measuring how long it took (no reply budget, no structured form)."""
        start = time.perf_counter()
        text = self._answer(messages, oracle)
        return Completion(
            text=text,
            prompt_tokens=estimate_tokens(messages_text(messages)),
            completion_tokens=estimate_tokens(text),
            latency=time.perf_counter() - start,
            finish_reason="stop",
        )


class OracleModel(OfflineModel):
    """Answers exactly the oracle text the stage computed from the row's gold data."""

    uses_oracle = True
    needs_oracle = True

    def __init__(self, name: str = "oracle") -> None:
        super().__init__(name)

    def _answer(self, messages: Messages, oracle: str | None) -> str:
        if oracle is None:
            raise ModelError(
                f"model {self.name!r} needs an oracle answer, but the stage gave none "
                "(define _oracle(row) on the stage or pick another model)"
            )
        return oracle


class EchoModel(OfflineModel):
    """Answers the last user message, unchanged."""

    def __init__(self, name: str = "echo") -> None:
        super().__init__(name)

    def _answer(self, messages: Messages, oracle: str | None) -> str:
        return last_user_message(messages)


def _fraction(messages: Messages, seed: int) -> float:
    """A number in [0, 1) fixed by the messages and the seed."""
    digest = hashlib.sha256(orjson.dumps([seed, messages])).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class FlakeyModel(OfflineModel):
    """Deterministic by the messages: ~60% the good answer, ~20% garbage, ~20% an exception.

    The good answer is the oracle text, or the last user message when there is no oracle.
    """

    GARBAGE = "@@garbage@@ lorem ipsum }{"
    uses_oracle = True

    def __init__(self, name: str = "flakey", *, seed: int = 0) -> None:
        super().__init__(name)
        self.seed = seed

    def settings(self) -> dict[str, Any]:
        """The seed changes which prompts fail, so it is part of the settings."""
        return {**super().settings(), "seed": self.seed}

    def _answer(self, messages: Messages, oracle: str | None) -> str:
        draw = _fraction(messages, self.seed)
        if draw < 0.6:
            return oracle if oracle is not None else last_user_message(messages)
        if draw < 0.8:
            return self.GARBAGE
        raise ModelError(f"model {self.name!r}: simulated failure (flakey model)")


def offline_models() -> dict[str, Model]:
    """The built-in offline models by name."""
    return {
        "oracle": OracleModel("oracle"),
        "perfect": OracleModel("perfect"),
        "echo": EchoModel("echo"),
        "flakey": FlakeyModel("flakey"),
    }
