"""What a model stage spends: dollars per call, the run's budget, and batch-API answers.

A `StageSpend` sits beside a PromptProcessor for one run of the stage. Before any row it finds
the prompts the cache cannot answer; with a budget it estimates what sending them would cost
and stops before sending if that would pass the budget; in batch mode it sends them as provider
batches (resumable, see `masksql_pipe.lm.batch`) and hands the answers to the rows. Every call
that goes out is charged at the model's price (a cached answer costs nothing now).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from masksql_pipe.engine.stage import RowCounter, RunOptions
from masksql_pipe.errors import ConfigError, ModelError
from masksql_pipe.lm.base import Completion, Messages, Model, estimate_tokens, messages_text
from masksql_pipe.lm.batch import BatchRunner
from masksql_pipe.lm.pricing import DEFAULT_OUTPUT_BOUND, Budget

if TYPE_CHECKING:
    from masksql_pipe.lm.model_entries import BatchSettings, Price

COST_KEY = "total_cost"
"""Row key: dollars spent on the row's model calls (only when the models have prices)."""


class StageSpend:
    """Cost, budget and batch answers of one run of one model stage."""

    def __init__(
        self,
        model: Model,
        options: RunOptions,
        *,
        record: Path,
        label: str,
        output_bound: int | None,
    ) -> None:
        self.model = model
        self.price: Price | None = getattr(model, "price", None)
        self.budget: Budget | None = options.budget
        own = getattr(model, "batch", None)
        self.batch: BatchSettings | None = None
        if not model.offline and (own is not None or options.batch):
            if own is None:
                from masksql_pipe.lm.model_entries import BatchSettings

                own = BatchSettings()
            self.batch = own
        self.record = record
        self.label = label
        self.output_bound = output_bound or DEFAULT_OUTPUT_BOUND
        self.show = options.progress is not False
        self.cost = 0.0
        self.answers: dict[str, Completion] = {}
        self.errors: dict[str, str] = {}
        self.batches: list[dict[str, Any]] = []
        self.batches_created = 0
        if self.budget is not None and not model.offline and self.price is None:
            raise ConfigError(
                f"stage {label}: --budget needs a price for model {model.name!r}; add "
                "'price: {input: ..., output: ...}' (dollars per million tokens) to its entry in "
                "the models file"
            )

    @property
    def needs_prompts(self) -> bool:
        """True when the prompts still to send must be known before the rows run."""
        return not self.model.offline and (self.batch is not None or self.budget is not None)

    # -- money ------------------------------------------------------------------------------------
    def cost_of(self, completion: Completion) -> float:
        """Dollars for one completion (0 for a cached answer or a model without a price)."""
        if self.price is None or completion.cached:
            return 0.0
        return self.price.cost(
            completion.prompt_tokens,
            completion.completion_tokens,
            completion.cached_tokens,
            batch=completion.batch,
        )

    def _estimate(self, messages: Messages, batch: bool) -> float:
        if self.price is None:
            return 0.0
        prompt = estimate_tokens(messages_text(messages))
        return self.price.cost(prompt, self.output_bound, batch=batch)

    # -- before the rows ---------------------------------------------------------------------------
    async def prepare(
        self, pending: dict[str, tuple[Messages, dict[str, Any]]], counter: RowCounter
    ) -> None:
        """Check the budget for `pending` (cache key -> messages, request body), then, in batch
        mode, answer them through batches."""
        if not pending:
            return
        if self.budget is not None:
            estimate = sum(self._estimate(m, self.batch is not None) for m, _ in pending.values())
            self.budget.check(
                estimate,
                f"stage {self.label}: {len(pending)} prompts not in the cache "
                f"(at most {self.output_bound} reply tokens each)",
            )
        if self.batch is None:
            return
        client_model = _batch_model(self.model)

        def status(text: str) -> None:
            counter.note = f"batch {text}"

        runner = BatchRunner(
            client_model.batch_client(),
            self.record,
            self.batch,
            on_status=status,
            label=f"stage {self.label}",
        )
        self._say(f"{self.label}: {len(pending)} prompts go to the batch API")
        outcome = await runner.run({key: body for key, (_, body) in pending.items()})
        counter.note = ""
        self.batches_created += runner.submitted
        for answer in outcome.answers.values():
            answer.batch = True
        self.answers.update(outcome.answers)
        self.errors.update(outcome.errors)
        self.batches.extend(outcome.batches)
        for note in outcome.notes:
            self._say(f"{self.label}: {note}")

    # -- each call ---------------------------------------------------------------------------------
    def guard(
        self, key: str | None, messages: Messages, ask: Callable[[], Awaitable[Completion]]
    ) -> Callable[[], Awaitable[Completion]]:
        """`ask` wrapped: a batch answer (or batch error) when there is one, else the budget is
        checked for this call, the call made, and its cost charged."""

        async def guarded() -> Completion:
            if key is not None:
                failure = self.errors.get(key)
                if failure is not None:
                    raise ModelError(failure)
                answer = self.answers.get(key)
                if answer is not None:
                    completion = replace(answer)
                    self._charge(completion, 0.0)
                    return completion
            reserved = 0.0
            if self.budget is not None:
                reserved = self._estimate(messages, False)
                self.budget.check(reserved, f"stage {self.label}: the next call")
                self.budget.charge(reserved)
            try:
                completion = await ask()
            except BaseException:
                if self.budget is not None:
                    self.budget.charge(-reserved)
                raise
            self._charge(completion, reserved)
            return completion

        return guarded

    def _charge(self, completion: Completion, reserved: float) -> None:
        dollars = self.cost_of(completion)
        self.cost += dollars
        if self.budget is not None:
            self.budget.charge(dollars - reserved)

    def add_to_row(self, row: dict[str, Any], completion: Completion) -> None:
        """Add the completion's cost to the row's `total_cost` (priced models only)."""
        if self.price is None:
            return
        previous = row.get(COST_KEY)
        base = previous if isinstance(previous, int | float) and previous is not True else 0.0
        row[COST_KEY] = round(base + self.cost_of(completion), 10)

    def figures(self) -> dict[str, Any]:
        """Stage figures: dollars (priced models only) and the batches used."""
        found: dict[str, Any] = {}
        if self.price is not None:
            found["cost"] = round(self.cost, 8)
        if self.batches:
            found["batches"] = self.batches
        return found

    def _say(self, message: str) -> None:
        if self.show:
            print(message, file=sys.stderr, flush=True)


def _batch_model(model: Model) -> Any:
    """The endpoint model a batch goes to (the first replica of a replica set)."""
    endpoints = getattr(model, "endpoints", None)
    if endpoints:
        return endpoints[0].model
    if not hasattr(model, "batch_client"):
        raise ConfigError(f"model {model.name!r} has no batch API; run without --batch")
    return model
