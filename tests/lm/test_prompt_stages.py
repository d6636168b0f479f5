"""Model stages run by the engine's Pipeline against a real loopback server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from masksql_pipe.engine.pipeline import Pipeline
from masksql_pipe.engine.stage import ERROR_KEY, RunOptions
from masksql_pipe.errors import ConfigError, ModelError, StageFatal
from masksql_pipe.lm import ModelRegistry
from masksql_pipe.lm.model_entries import ModelEntry
from masksql_pipe.loopback.server import LoopbackServer
from tests.lm_fixtures import (
    SECRET,
    Ask,
    NoOracle,
    Shout,
    questions,
    read_rows,
    registry_for,
    server_fixture,  # noqa: F401 - fixture
    write_input,
)


def quiet(**kw: object) -> RunOptions:
    return RunOptions(progress=False, **kw)  # type: ignore[arg-type]


async def test_usage_totals_accumulate_over_two_model_stages(
    server: LoopbackServer, tmp_path: Path
) -> None:
    rows = questions(12)
    rows[0]["total_toks"] = 100  # an earlier total is added to, not replaced
    path = write_input(tmp_path, rows)
    registry = registry_for(server)
    pipeline = Pipeline([Ask("answer", "loop"), Shout("loud", "loop")], quiet(registry=registry))
    await pipeline.run(path)
    await registry.aclose()
    out = read_rows(tmp_path / "3_Shout.json")
    for i, row in enumerate(out):
        q = f"what is {i} plus {i}?"
        ask_tokens = len("Q: " + q) // 4 * 2  # prompt and echoed reply
        shout_tokens = len("Repeat loudly." + "say " + q) // 4 + len("say " + q) // 4
        assert row["answer"] == "Q: " + q and row["loud"] == ("SAY " + q).upper()
        assert row["total_toks"] == ask_tokens + shout_tokens + (100 if i == 0 else 0)
        assert row["total_latency"] >= 2 * 0.01  # two calls, each at least the server latency
    first = read_rows(tmp_path / "2_Ask.json")
    assert all(0.01 <= r["total_latency"] < out[i]["total_latency"] for i, r in enumerate(first))
    stats = pipeline.reports[0].stats
    assert stats["calls"] == 12 and stats["cache_hits"] == 0
    assert stats["prompt_tokens"] == sum(len("Q: " + r["question"]) // 4 for r in rows)
    assert stats["latency_p50"] >= 0.01 and stats["latency_max"] >= stats["latency_p95"]
    record = json.loads((tmp_path / ".masksql_pipe" / "stages" / "2_Ask.json").read_text())
    assert record["stats"]["calls"] == 12  # the bookkeeping keeps the figures for `status`


async def test_every_row_answered_with_thirty_percent_faults(tmp_path: Path) -> None:
    path = write_input(tmp_path, questions(60))
    with LoopbackServer(fault_rate=0.3, seed=7, retry_after=0.01, hang_seconds=5) as srv:
        registry = registry_for(srv, timeout=0.4, max_retries=6)
        pipeline = Pipeline([Ask("answer", "loop")], quiet(registry=registry, concurrency=20))
        await pipeline.run(path)
        await registry.aclose()
        faults = srv.faults_sent()
        requests = srv.requests
    out = read_rows(tmp_path / "2_Ask.json")
    assert [r["answer"] for r in out] == [f"Q: {r['question']}" for r in questions(60)]
    assert not any(ERROR_KEY in r for r in out)
    assert set(faults) == {"429", "500", "hang", "malformed"}
    # every fault cost exactly one retry, and the stage reports them all
    assert requests == 60 + sum(faults.values())
    assert pipeline.reports[0].stats["retries"] == sum(faults.values())


@pytest.mark.parametrize("client", ["direct", "openai"])
async def test_unauthorized_fails_fast_and_key_is_written_nowhere(
    tmp_path: Path, client: str
) -> None:
    path = write_input(tmp_path, questions(40))
    with LoopbackServer(api_key="the-right-key") as srv:
        registry = registry_for(srv, key=SECRET, max_retries=5, client=client)
        pipeline = Pipeline([Ask("answer", "loop")], quiet(registry=registry, concurrency=4))
        try:
            await pipeline.run(path)
            out = read_rows(tmp_path / "2_Ask.json")
            messages = {r[ERROR_KEY]["message"] for r in out}
        except ModelError as exc:  # an engine that stops the stage on a fatal error
            messages = {str(exc)}
        await registry.aclose()
        assert srv.requests <= 4  # at most the calls already in flight, not one per row
    assert len(messages) == 1
    message = messages.pop()
    assert "HTTP 401" in message and "OPENAI_API_KEY" in message and "'loop'" in message
    for file in tmp_path.rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            assert SECRET.encode() not in data and SECRET[:12].encode() not in data, file


async def test_force_rerun_uses_cache_and_no_cache_asks_again(
    server: LoopbackServer, tmp_path: Path
) -> None:
    path = write_input(tmp_path, questions(15))
    registry = registry_for(server)
    await Pipeline([Ask("answer", "loop")], quiet(registry=registry)).run(path)
    assert server.requests == 15
    first = (tmp_path / "2_Ask.json").read_bytes()

    forced = Pipeline([Ask("answer", "loop")], quiet(registry=registry, force=True))
    await forced.run(path)
    assert server.requests == 15  # --force: every answer from the cache
    assert forced.reports[0].stats["cache_hits"] == 15
    assert forced.reports[0].stats["calls"] == 0
    assert forced.reports[0].stats["prompt_tokens"] == 0  # a cache hit spends nothing
    assert (tmp_path / "2_Ask.json").read_bytes() == first  # ...and rows show the recorded usage

    fresh = Pipeline([Ask("answer", "loop")], quiet(registry=registry, force=True, no_cache=True))
    await fresh.run(path)
    assert server.requests == 30
    assert max(server.requests_by_prompt().values()) == 2
    await registry.aclose()

    log = tmp_path / ".masksql_pipe" / "prompts" / "2_Ask.jsonl"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(entries) == 45
    assert sorted(e["row"] for e in entries[15:30]) == list(range(15))
    assert [e["cached"] for e in entries] == [False] * 15 + [True] * 15 + [False] * 15
    assert entries[0]["messages"][0]["role"] == "user" and entries[0]["reply"].startswith("Q: ")


async def test_identical_prompts_are_sent_once(server: LoopbackServer, tmp_path: Path) -> None:
    path = write_input(tmp_path, [{"question": "same", "gold": "x"}] * 20)
    registry = registry_for(server)
    await Pipeline([Ask("answer", "loop")], quiet(registry=registry, concurrency=20)).run(path)
    await registry.aclose()
    assert server.requests == 1
    assert [r["answer"] for r in read_rows(tmp_path / "2_Ask.json")] == ["Q: same"] * 20


async def test_oracle_and_flakey_need_no_network(tmp_path: Path) -> None:
    # no key and an endpoint where nothing listens: offline models must not care
    registry = ModelRegistry({}, {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    path = write_input(tmp_path, questions(50))
    stages = [Ask("answer", "oracle"), Ask("flaky_answer", "flakey").named("Flakey")]
    pipeline = Pipeline(stages, quiet(registry=registry))
    await pipeline.run(path)
    out = read_rows(tmp_path / "3_Flakey.json")
    assert [r["answer"] for r in read_rows(tmp_path / "2_Ask.json")] == [
        str(2 * i) for i in range(50)
    ]
    failed = [r for r in out if ERROR_KEY in r]
    good = [r for r in out if ERROR_KEY not in r and r["flaky_answer"] == r["gold"]]
    garbage = [r for r in out if ERROR_KEY not in r and r["flaky_answer"] != r["gold"]]
    assert len(failed) + len(good) + len(garbage) == 50
    assert failed and good and garbage and len(good) > len(failed)
    assert all(r[ERROR_KEY]["stage"] == "Flakey" for r in failed)
    assert pipeline.reports[1].errors == len(failed)

    # deterministic: a forced rerun gives the same answers and errors (latencies are measured)
    def answers(rows: list[dict]) -> list:
        return [(r.get("flaky_answer"), r.get(ERROR_KEY), r["total_toks"]) for r in rows]

    await Pipeline(stages, quiet(registry=registry, force=True)).run(path)
    assert answers(read_rows(tmp_path / "3_Flakey.json")) == answers(out)
    assert not (tmp_path / ".masksql_pipe" / "cache.sqlite").exists()  # offline: nothing cached


async def test_oracle_without_hook_is_a_setup_error(tmp_path: Path) -> None:
    path = write_input(tmp_path, questions(3))
    with pytest.raises(ConfigError, match=r"NoOracle defines no _oracle"):
        await Pipeline([NoOracle("x", "oracle")], quiet()).run(path)
    assert not (tmp_path / "2_NoOracle.json").exists()


async def test_missing_key_stops_before_any_row(tmp_path: Path) -> None:
    path = write_input(tmp_path, questions(3))
    registry = ModelRegistry({}, {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    with pytest.raises(ConfigError, match=r"'gpt-lab'.*OPENAI_API_KEY"):
        await Pipeline([Ask("answer", "gpt-lab")], quiet(registry=registry)).run(path)
    assert not (tmp_path / "2_Ask.json").exists()
    assert not list((tmp_path / ".masksql_pipe").rglob("*.jsonl"))


async def test_template_missing_variable_fails_before_any_request(
    server: LoopbackServer, tmp_path: Path
) -> None:
    template = tmp_path / "ask.j2"
    template.write_text("Question: {{ question }}\nHint: {{ evidence }}\n", encoding="utf-8")
    path = write_input(tmp_path / "data", questions(5))
    registry = registry_for(server)

    class Templated(Ask):
        def _get_prompt(self, row: dict) -> str:
            return self.render(question=row["question"])

    with pytest.raises(ConfigError) as err:
        await Pipeline([Templated("answer", "loop", template)], quiet(registry=registry)).run(path)
    await registry.aclose()
    assert "'evidence' is undefined" in str(err.value) and str(template) in str(err.value)
    assert server.requests == 0
    assert not (tmp_path / "data" / "2_Templated.json").exists()


async def test_default_prompt_renders_template_with_row_fields(
    server: LoopbackServer, tmp_path: Path
) -> None:
    from masksql_pipe.prompt.processor import PromptProcessor

    template = tmp_path / "t.j2"
    template.write_text("{{ question }} / {{ row.gold }}", encoding="utf-8")
    path = write_input(tmp_path / "d", questions(2))
    registry = registry_for(server)
    await Pipeline([PromptProcessor("said", "loop", template)], quiet(registry=registry)).run(path)
    await registry.aclose()
    out = read_rows(tmp_path / "d" / "2_PromptProcessor.json")
    assert [r["said"] for r in out] == ["what is 0 plus 0? / 0", "what is 1 plus 1? / 2"]


async def test_template_edit_and_model_setting_make_the_stage_stale(tmp_path: Path) -> None:
    template = tmp_path / "ask.j2"
    template.write_text("Q: {{ question }}", encoding="utf-8")
    path = write_input(tmp_path / "data", questions(3))

    class Templated(Ask):
        def _get_prompt(self, row: dict) -> str:
            return self.render(question=row["question"])

    config = tmp_path / "models.yaml"
    config.write_text("fake: {model: m, settings: {temperature: 0}}\n", encoding="utf-8")
    stage = Templated("answer", "fake", template)
    stage.use_options(RunOptions(registry=ModelRegistry.from_environment(config)))
    original = stage.fingerprint()
    assert Templated("answer", "oracle", template).fingerprint() != original

    template.write_text("Question: {{ question }}", encoding="utf-8")
    edited = stage.fingerprint()
    assert edited != original

    config.write_text("fake: {model: m, settings: {temperature: 0.5}}\n", encoding="utf-8")
    stage.use_options(RunOptions(registry=ModelRegistry.from_environment(config)))
    assert stage.fingerprint() not in (original, edited)

    # through the engine: a finished offline stage goes stale when its template changes
    offline = Templated("answer", "oracle", template)
    await Pipeline([offline], quiet()).run(path)
    assert [s.status for s in Pipeline([offline], quiet()).states(path)] == ["up to date"]
    template.write_text("Question?? {{ question }}", encoding="utf-8")
    assert [s.status for s in Pipeline([offline], quiet()).states(path)] == ["stale"]


async def test_dict_values_are_merged(tmp_path: Path) -> None:
    class Links(Ask):
        def _process_output(self, row: dict, output: str) -> dict:
            return {"new": output}

    rows = [{"question": "q", "gold": "g", "links": {"old": 1, "new": "stale"}}]
    path = write_input(tmp_path, rows)
    await Pipeline([Links("links", "oracle")], quiet()).run(path)
    (row,) = read_rows(tmp_path / "2_Links.json")
    assert row["links"] == {"old": 1, "new": "g"}
    assert row["total_toks"] == len("Q: q") // 4 + len("g") // 4
    assert isinstance(row["total_latency"], float)


async def test_unreachable_endpoint_stops_the_stage_once(tmp_path: Path) -> None:
    # a server that was there and is gone: every row would fail the same way
    with LoopbackServer() as gone:
        url = gone.base_url
    path = write_input(tmp_path, questions(40))
    registry = ModelRegistry(
        {"gone": ModelEntry(model="m", base_url=url, max_retries=1, api_key_env="OPENAI_API_KEY")},
        {"OPENAI_API_KEY": SECRET},
    )
    pipeline = Pipeline([Ask("answer", "gone")], quiet(registry=registry, concurrency=4))
    with pytest.raises(ModelError, match="cannot connect") as info:
        await pipeline.run(path)
    await registry.aclose()
    assert isinstance(info.value, StageFatal)
    assert SECRET not in str(info.value)
    assert not (tmp_path / "2_Ask.json").exists()  # nothing that looks finished
