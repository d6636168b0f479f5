"""Dollars per row, stage and run from the models file's price table; the run budget."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from masksql_pipe.engine.pipeline import Pipeline
from masksql_pipe.engine.stage import ERROR_KEY, RunOptions
from masksql_pipe.errors import ConfigError
from masksql_pipe.lm.pricing import Budget, BudgetExceeded, parse_price
from masksql_pipe.lm.registry import ModelRegistry, load_config
from tests.lm_fixtures import SECRET, Ask, Shout, questions, read_rows, write_input
from tests.loopback_batch import BatchLoopbackServer

PRICE = "{input: 2.50, cached_input: 1.25, output: 10.00, batch_discount: 0.5}"


def tokens(text: str) -> int:
    """The loopback server's token count (its documented rule: 4 characters a token)."""
    return len(text) // 4


def registry(tmp_path: Path, srv: BatchLoopbackServer, extra: str = "") -> ModelRegistry:
    config = tmp_path / "models.yaml"
    config.write_text(
        f"models:\n  loop:\n    model: m\n    base_url: '{srv.base_url}'\n{extra}",
        encoding="utf-8",
    )
    return ModelRegistry(load_config(config), {"OPENAI_API_KEY": SECRET}, config_file=config)


def run(data: Path, reg: ModelRegistry, stages: list[Any] | None = None, **options: Any) -> Any:
    engine = Pipeline(
        stages or [Ask("answer", "loop")],
        RunOptions(concurrency=4, progress=False, registry=reg, **options),
    )

    async def go() -> None:
        try:
            await engine.run(data)
        finally:
            await reg.aclose()

    asyncio.run(go())
    return engine


def by_hand(prompt: str, reply: str, cached: int, discount: float = 1.0) -> float:
    p, c = tokens(prompt), tokens(reply)
    cached = min(cached, p)
    return ((p - cached) * 2.50 + cached * 1.25 + c * 10.00) / 1e6 * discount


def test_cost_per_row_and_stage_from_the_server_usage(tmp_path: Path) -> None:
    data = write_input(tmp_path / "data", questions(12))
    with BatchLoopbackServer() as srv:
        srv.cached_prompt_tokens = 2
        engine = run(data, registry(tmp_path, srv, f"    price: {PRICE}\n"))
        first = read_rows(tmp_path / "data" / "2_Ask.json")
        rerun = run(data, registry(tmp_path, srv, f"    price: {PRICE}\n"), force=True)
    expected = [by_hand(f"Q: {q['question']}", f"Q: {q['question']}", 2) for q in questions(12)]
    assert [r["total_cost"] for r in first] == pytest.approx(expected, rel=1e-9)
    assert engine.reports[0].stats["cost"] == pytest.approx(sum(expected), rel=1e-6)
    assert rerun.reports[0].stats["cost"] == 0.0  # every answer came from the cache
    rows = read_rows(tmp_path / "data" / "2_Ask.json")
    assert all(r["total_cost"] == 0.0 for r in rows)  # the rerun's rows: nothing spent now


def test_row_cost_accumulates_across_stages(tmp_path: Path) -> None:
    data = write_input(tmp_path / "data", questions(5))
    with BatchLoopbackServer() as srv:
        run(
            data,
            registry(tmp_path, srv, f"    price: {PRICE}\n"),
            [Ask("a", "loop"), Shout("b", "loop")],
        )
    rows = read_rows(tmp_path / "data" / "3_Shout.json")
    for row, q in zip(rows, questions(5), strict=True):
        ask = by_hand(f"Q: {q['question']}", f"Q: {q['question']}", 0)
        shout_prompt = "Repeat loudly." + f"say {q['question']}"
        shout = by_hand(shout_prompt, f"say {q['question']}", 0)
        assert row["total_cost"] == pytest.approx(ask + shout, rel=1e-9)


def test_batch_cost_uses_the_discount(tmp_path: Path) -> None:
    data = write_input(tmp_path / "data", questions(8))
    extra = f"    price: {PRICE}\n    batch: {{poll_seconds: 0.02}}\n"
    with BatchLoopbackServer() as srv:
        engine = run(data, registry(tmp_path, srv, extra))
        usage = srv.batches.usage_by_prompt()
    assert len(usage) == 8
    expected = sum(
        (u["prompt_tokens"] * 2.50 + u["completion_tokens"] * 10.00) / 1e6 * 0.5
        for u in usage.values()
    )
    assert engine.reports[0].stats["cost"] == pytest.approx(expected, rel=1e-9)
    rows = read_rows(tmp_path / "data" / "2_Ask.json")
    assert sum(r["total_cost"] for r in rows) == pytest.approx(expected, rel=1e-9)


def test_a_model_without_prices_shows_tokens_only(tmp_path: Path) -> None:
    data = write_input(tmp_path / "data", questions(3))
    with BatchLoopbackServer() as srv:
        engine = run(data, registry(tmp_path, srv))
    rows = read_rows(tmp_path / "data" / "2_Ask.json")
    assert all("total_cost" not in r and r["total_toks"] > 0 for r in rows)
    assert "cost" not in engine.reports[0].stats


def test_budget_stops_before_sending_and_keeps_what_was_done(tmp_path: Path) -> None:
    data = write_input(tmp_path / "data", questions(10))
    extra = f"    price: {PRICE}\n"
    with BatchLoopbackServer() as srv:
        # the estimate: prompt tokens (4 characters a token) plus max_tokens (512) per call
        estimate = sum(
            (tokens(f"Q: {q['question']}") * 2.50 + 512 * 10.00) / 1e6 for q in questions(10)
        )
        with pytest.raises(BudgetExceeded) as caught:
            run(data, registry(tmp_path, srv, extra), budget=Budget(estimate * 0.99))
        assert srv.requests == 0  # nothing sent
        assert caught.value.exit_code == 2
        assert "$" in str(caught.value) and "--budget" in str(caught.value)
        engine = run(data, registry(tmp_path, srv, extra), budget=Budget(estimate * 1.01))
        assert srv.requests == 10
    assert engine.reports[0].stats["cost"] <= estimate


def test_budget_counts_the_running_total_across_stages(tmp_path: Path) -> None:
    data = write_input(tmp_path / "data", questions(6))
    extra = f"    price: {PRICE}\n"
    spent_first = sum(
        by_hand(f"Q: {q['question']}", f"Q: {q['question']}", 0) for q in questions(6)
    )
    second_estimate = sum(
        (tokens("Repeat loudly." + f"say {q['question']}") * 2.50 + 512 * 10.00) / 1e6
        for q in questions(6)
    )
    # enough for the first stage's estimate, short of what was spent plus the second's
    budget = spent_first + second_estimate - 1e-7
    with BatchLoopbackServer() as srv:
        stages = [Ask("a", "loop"), Shout("b", "loop")]
        with pytest.raises(BudgetExceeded, match="already spent"):
            run(data, registry(tmp_path, srv, extra), stages, budget=Budget(budget))
        assert srv.requests == 6  # the first stage ran; the second sent nothing
    assert not any(ERROR_KEY in r for r in read_rows(tmp_path / "data" / "2_Ask.json"))
    assert not (tmp_path / "data" / "3_Shout.json").exists()


def test_budget_needs_prices_and_bad_prices_are_named(tmp_path: Path) -> None:
    data = write_input(tmp_path / "data", questions(2))
    with BatchLoopbackServer() as srv:
        with pytest.raises(ConfigError, match="--budget needs a price for model 'loop'"):
            run(data, registry(tmp_path, srv), budget=Budget(1.0))
        assert srv.requests == 0
    with pytest.raises(ConfigError, match="'price' needs 'output'"):
        parse_price("models.yaml: model 'x'", {"input": 1})
    with pytest.raises(ConfigError, match="batch_discount"):
        parse_price("models.yaml: model 'x'", {"input": 1, "output": 2, "batch_discount": 2})
    with pytest.raises(ConfigError, match="unknown price key 'inptu'"):
        parse_price("models.yaml: model 'x'", {"inptu": 1, "output": 2})


def test_running_total_stops_calls_the_estimate_did_not_foresee(tmp_path: Path) -> None:
    # replies cut off at max_tokens=1 are asked again (parse retries): three calls a row where
    # the estimate counted one, so the running total, not the estimate, must stop the run
    data = write_input(tmp_path / "data", questions(6))
    extra = f"    price: {PRICE}\n"
    per_call = [(tokens(f"Q: {q['question']}") * 2.50 + 1 * 10.00) / 1e6 for q in questions(6)]
    budget = sum(per_call) * 1.5
    with BatchLoopbackServer() as srv:
        stage = Ask("answer", "loop", max_tokens=1)
        with pytest.raises(BudgetExceeded, match="the next call"):
            run(data, registry(tmp_path, srv, extra), [stage], budget=Budget(budget))
        sent = srv.requests
    assert sent < 3 * len(per_call)  # stopped before every follow-up went out
    assert sent * max(per_call) <= budget  # what was sent stays within the budget
