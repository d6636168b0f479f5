"""Dollars for model calls: a price table per model, and a run budget checked before sending.

Prices are dollars per million tokens, as providers publish them. A model without a price has
no cost figure anywhere (tokens only): a made-up figure would be worse than none. The price
table itself is `model_entries.Price`, the models file's `price:` entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from masksql_pipe.errors import ConfigError, StageFatal

if TYPE_CHECKING:
    from masksql_pipe.lm.model_entries import Price

DEFAULT_OUTPUT_BOUND = 1000
"""Completion tokens assumed per call by a budget estimate when no max_tokens is set."""


def parse_price(where: str, value: Any) -> Price | None:
    """A `price:` mapping from the models file, or None when absent; ConfigError names the key."""
    if value is None:
        return None
    from masksql_pipe.lm.model_entries import Price, validate_part

    return validate_part(Price, value, where, "price")


class BudgetExceeded(StageFatal):
    """The run would spend more than `--budget`: it stops before sending (exit 2, rows kept)."""

    exit_code = 2


class Budget:
    """A run's spending cap in dollars: estimates are checked before prompts are sent and each
    priced call is charged as it returns, so the run stops before passing the cap."""

    def __init__(self, dollars: float) -> None:
        if dollars < 0:
            raise ConfigError(f"--budget must be at least 0 dollars, got {dollars!r}")
        self.limit = float(dollars)
        self.spent = 0.0

    def check(self, estimate: float, what: str) -> None:
        """Stop (BudgetExceeded) if spending `estimate` more would pass the cap."""
        if self.spent + estimate > self.limit + 1e-12:
            raise BudgetExceeded(
                f"budget ${self.limit:.4f}: {what} would cost up to ${estimate:.4f} with "
                f"${self.spent:.4f} already spent; nothing was sent and finished rows are kept "
                "(raise --budget, or lower --limit, to go on)"
            )

    def charge(self, dollars: float) -> None:
        """Add the cost of a call that returned."""
        self.spent += dollars


def cached_tokens(usage: dict[str, Any]) -> int:
    """Prompt tokens the provider served from its prompt cache (`prompt_tokens_details`)."""
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict):
        value = details.get("cached_tokens")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return 0
