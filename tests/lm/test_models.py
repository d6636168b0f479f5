"""Models, registry, cache and limits, over real HTTP on 127.0.0.1 with the real openai client."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from pathlib import Path

import pytest

from masksql_pipe.errors import ConfigError, ModelError
from masksql_pipe.lm import Completion, FlakeyModel, ModelRegistry, ResponseCache, cache_key
from masksql_pipe.lm.model_entries import BatchSettings, ModelEntry, Price
from masksql_pipe.lm.openai_model import ModelRejected
from masksql_pipe.loopback.server import LoopbackServer, prompt_id
from tests.lm_fixtures import SECRET, registry_for, server_fixture  # noqa: F401 - fixture

USER = [{"role": "user", "content": "hello there, model"}]

CLIENTS = {"direct": "Python", "openai": "AsyncOpenAI"}
"""The models file's `client` settings, and the User-Agent name each sends (aiohttp's own
for the lean sender, the openai package's for its client)."""


# -- offline models ------------------------------------------------------------------------------


async def test_oracle_and_echo_answer_offline() -> None:
    registry = ModelRegistry({}, {})  # no key, no endpoint: offline models need neither
    oracle = registry.get("oracle")
    done = await oracle.complete(USER, oracle="forty-two")
    assert done.text == "forty-two"
    assert done.prompt_tokens == len("hello there, model") // 4 == 4
    assert done.completion_tokens == len("forty-two") // 4 == 2
    with pytest.raises(ModelError, match="oracle"):
        await oracle.complete(USER)
    echo = registry.get("echo")
    chat = [{"role": "system", "content": "sys"}, *USER, {"role": "assistant", "content": "x"}]
    assert (await echo.complete(chat)).text == "hello there, model"
    assert registry.get("perfect").needs_oracle and not echo.uses_oracle


async def test_flakey_is_deterministic_and_mixed() -> None:
    model = FlakeyModel()
    outcomes: dict[str, int] = {"good": 0, "garbage": 0, "error": 0}
    for i in range(300):
        messages = [{"role": "user", "content": f"prompt number {i}"}]
        results = []
        for _ in range(2):
            try:
                text = (await model.complete(messages, oracle=f"answer {i}")).text
                results.append("good" if text == f"answer {i}" else "garbage")
            except ModelError:
                results.append("error")
        assert results[0] == results[1], "same prompt, same outcome"
        outcomes[results[0]] += 1
    assert 150 <= outcomes["good"] <= 210
    assert 35 <= outcomes["garbage"] <= 85
    assert 35 <= outcomes["error"] <= 85
    # with no oracle the good answer is the echo of the prompt
    for i in range(40):
        messages = [{"role": "user", "content": f"prompt number {i}"}]
        try:
            text = (await model.complete(messages)).text
        except ModelError:
            continue
        assert text in (f"prompt number {i}", FlakeyModel.GARBAGE)


# -- registry ------------------------------------------------------------------------------------


def test_missing_key_names_the_env_var(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(
        "models:\n  big:\n    model: gpt-x\n    base_url: http://127.0.0.1:9/v1\n"
        "    api_key_env: BIG_LAB_KEY\n",
        encoding="utf-8",
    )
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("", encoding="utf-8")
    registry = ModelRegistry.from_environment(config, env_file=empty_env)
    with pytest.raises(ConfigError) as err:
        registry.get("big")
    message = str(err.value)
    assert "BIG_LAB_KEY" in message and "'big'" in message and str(config) in message
    # a plain OpenAI id with no key names OPENAI_API_KEY; a near-typo of an offline name is hinted
    bare = ModelRegistry({}, {})
    with pytest.raises(ConfigError, match=r"OPENAI_API_KEY.*") as err2:
        bare.get("orcale")
    assert "did you mean 'oracle'" in str(err2.value)
    with pytest.raises(ConfigError, match="not valid"):
        bare.get("bad name with spaces")


def test_missing_env_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.env"):
        ModelRegistry.from_environment(env_file=tmp_path / "missing.env")


def test_env_file_supplies_key_without_overriding_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "OPENAI_API_KEY=from-dotenv\nOPENAI_BASE_URL=http://127.0.0.1:1/v1\n", encoding="utf-8"
    )
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:2/v1")
    registry = ModelRegistry.from_environment(env_file=env_file)
    model = registry.get("gpt-test")
    assert model.settings() == {
        "model": "gpt-test",
        "base_url": "http://127.0.0.1:2/v1",
        "temperature": 0,  # the default for OpenAI-compatible models
    }
    assert "from-dotenv" not in repr(model) and "from-dotenv" not in json.dumps(model.settings())
    monkeypatch.setenv("OPENAI_API_KEY", "from-environment")
    assert registry.get("gpt-test") is model  # one instance per name


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_file_models(tmp_path: Path, suffix: str) -> None:
    spec = {
        "models": {
            "fast": {
                "model": "small-1",
                "base_url": "http://127.0.0.1:5/v1/",
                "api_key_env": "FAST_KEY",
                "settings": {"temperature": 0.2, "max_tokens": 50},
                "max_concurrency": 3,
                "rpm": 100,
                "tpm": 5000,
                "timeout": 7,
                "max_retries": 1,
            }
        }
    }
    path = tmp_path / f"models{suffix}"
    text = json.dumps(spec)  # JSON is also YAML
    path.write_text(text, encoding="utf-8")
    env_file = tmp_path / "keys.env"
    env_file.write_text("FAST_KEY=k\n", encoding="utf-8")
    registry = ModelRegistry.from_environment(path, env_file=env_file)
    assert registry.names()[:4] == ["oracle", "perfect", "echo", "flakey"]
    assert "fast" in registry.names()
    model = registry.get("fast")
    assert model.settings() == {
        "model": "small-1",
        "base_url": "http://127.0.0.1:5/v1",
        "temperature": 0.2,
        "max_tokens": 50,
    }
    assert registry.describe("fast") == model.settings()
    assert (model.limits.max_concurrency, model.limits.rpm, model.limits.tpm) == (3, 100.0, 5000.0)
    assert (model.timeout, model.max_retries) == (7.0, 1)


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ("{model: x, temprature: 1}", "unknown key 'temprature'"),
        ("{model: x, api_key: sk-abc}", "api_key_env"),
        ("{model: x, rpm: fast}", "'rpm' must be a number"),
        ("{model: x, base_url: localhost}", "'base_url' must be an http"),
        ("[1, 2]", "expected a mapping"),
        ("{model: x, client: curl}", "'client' must be one of 'direct' or 'openai', got 'curl'"),
        ("{model: x, price: {input: 1, output: -2}}", "'price.output' must be at least 0, got -2"),
    ],
)
def test_bad_config_names_file_and_model(tmp_path: Path, entry: str, complaint: str) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(f"models:\n  m1: {entry}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        ModelRegistry.from_environment(path)
    assert str(path) in str(err.value) and "'m1'" in str(err.value)
    assert complaint in str(err.value)
    assert "sk-abc" not in str(err.value)


# -- cache ---------------------------------------------------------------------------------------


def test_cache_key_covers_settings_endpoint_and_messages() -> None:
    base = {"model": "m", "base_url": "http://127.0.0.1:1/v1", "temperature": 0}
    key = cache_key(base, USER)
    assert key == cache_key(dict(reversed(base.items())), USER)  # key order does not matter
    expected = hashlib.sha256(
        b'{"messages":[{"content":"hello there, model","role":"user"}],'
        b'"settings":{"base_url":"http://127.0.0.1:1/v1","model":"m","temperature":0}}'
    ).hexdigest()
    assert key == expected
    assert cache_key({**base, "temperature": 0.7}, USER) != key
    assert cache_key({**base, "max_tokens": 10}, USER) != key
    assert cache_key({**base, "base_url": "http://127.0.0.1:2/v1"}, USER) != key
    assert cache_key(base, [{"role": "user", "content": "hello there, model!"}]) != key


async def test_sampling_settings_change_the_stored_answer(
    server: LoopbackServer, tmp_path: Path
) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    for temperature in (0, 0, 0.5):
        registry = registry_for(server, settings={"temperature": temperature})
        model = registry.get("loop")
        key = cache_key(model.settings(), USER)
        await cache.fetch(key, lambda m=model: m.complete(USER))
        await registry.aclose()
    assert server.requests == 2  # the second temperature-0 call came from the cache
    cache.close()


async def test_cache_persists_successes_only(tmp_path: Path) -> None:
    path = tmp_path / "c" / "cache.sqlite"
    cache = ResponseCache(path)

    async def good() -> Completion:
        return Completion("yes", 3, 1, 0.25, retries=2)

    async def bad() -> Completion:
        raise ModelError("boom")

    first = await cache.fetch("k1", good)
    assert first.cached is False
    with pytest.raises(ModelError):
        await cache.fetch("k2", bad)
    cache.close()
    again = ResponseCache(path)  # a new process would see the same
    assert again.get("k1") == Completion("yes", 3, 1, 0.25, retries=0, cached=True)
    assert again.get("k2") is None and len(again) == 1
    again.close()


async def test_identical_prompts_in_flight_share_one_call(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    calls = 0

    async def slow() -> Completion:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return Completion("shared", 2, 2, 0.05)

    results = await asyncio.gather(*(cache.fetch("same", slow) for _ in range(10)))
    assert calls == 1
    assert [r.text for r in results] == ["shared"] * 10
    assert sum(not r.cached for r in results) == 1
    cache.close()


# -- the OpenAI-compatible model over HTTP --------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
async def test_retries_are_reported_and_usage_read(client: str) -> None:
    schedule = ["429", "500", "malformed", "ok"]
    with LoopbackServer(faults=schedule, retry_after=0.01) as srv:
        registry = registry_for(srv, max_retries=5, client=client)
        done = await registry.get("loop").complete(USER)
        await registry.aclose()
        assert done.text == "hello there, model"
        assert done.retries == 3
        assert (done.prompt_tokens, done.completion_tokens) == (4, 4)
        assert srv.requests == 4 and srv.faults_sent() == {"429": 1, "500": 1, "malformed": 1}
        assert srv.clients() == {CLIENTS[client]: 4}


@pytest.mark.parametrize("client", CLIENTS)
async def test_retry_after_is_waited_before_retrying_a_429(client: str) -> None:
    with LoopbackServer(faults=["429", "ok"], retry_after=0.6) as srv:
        registry = registry_for(srv, max_retries=2, client=client)
        start = time.monotonic()
        done = await registry.get("loop").complete(USER)
        elapsed = time.monotonic() - start
        await registry.aclose()
        assert (done.text, done.retries, srv.requests) == ("hello there, model", 1, 2)
        assert srv.clients() == {CLIENTS[client]: 2}
    assert 0.6 <= elapsed < 3  # the server's wait, not the client's own back-off


@pytest.mark.parametrize("client", CLIENTS)
async def test_models_file_client_setting_picks_the_sender(tmp_path: Path, client: str) -> None:
    path = tmp_path / "models.yaml"
    with LoopbackServer() as srv:
        path.write_text(
            f"models:\n  chosen: {{model: m, base_url: '{srv.base_url}', client: {client}}}\n"
            f"  default: {{model: m, base_url: '{srv.base_url}'}}\n",
            encoding="utf-8",
        )
        registry = ModelRegistry.from_environment(path)
        await registry.get("chosen").complete(USER)
        await registry.get("default").complete([{"role": "user", "content": "other"}])
        await registry.aclose()
        assert srv.clients() == Counter({CLIENTS[client]: 1}) + Counter({"Python": 1})


async def test_hang_past_timeout_is_retried() -> None:
    with LoopbackServer(faults=["hang", "ok"], hang_seconds=5) as srv:
        registry = registry_for(srv, timeout=0.3, max_retries=2)
        start = time.monotonic()
        done = await registry.get("loop").complete(USER)
        await registry.aclose()
    assert done.text == "hello there, model" and done.retries == 1
    assert 0.3 <= time.monotonic() - start < 4


@pytest.mark.parametrize("client", CLIENTS)
async def test_unauthorized_fails_fast_without_the_key(client: str) -> None:
    with LoopbackServer(api_key="the-right-key") as srv:
        registry = registry_for(srv, max_retries=5, client=client)
        model = registry.get("loop")
        with pytest.raises(ModelRejected) as err:
            await model.complete(USER)
        with pytest.raises(ModelRejected):  # later calls fail at once, sending nothing
            await model.complete([{"role": "user", "content": "another"}])
        await registry.aclose()
        assert srv.requests == 1 and srv.clients() == {CLIENTS[client]: 1}
    message = str(err.value)
    assert "401" in message and "'loop'" in message and "OPENAI_API_KEY" in message
    assert SECRET not in message and SECRET[:8] not in message
    assert "\n" not in message


async def test_not_found_names_model_and_base_url(server: LoopbackServer) -> None:
    registry = registry_for(server, base_url=server.base_url + "/nowhere", max_retries=5)
    with pytest.raises(ModelRejected) as err:
        await registry.get("loop").complete(USER)
    await registry.aclose()
    assert "404" in str(err.value) and "base_url" in str(err.value)
    assert server.requests == 0  # the route does not exist, so the chat handler never ran


@pytest.mark.parametrize("client", CLIENTS)
async def test_server_errors_become_a_model_error_after_retries(client: str) -> None:
    with LoopbackServer(faults=["500"] * 10) as srv:
        registry = registry_for(srv, max_retries=1, client=client)
        with pytest.raises(ModelError, match=r"HTTP 500.*after 1 retries"):
            await registry.get("loop").complete(USER)
        await registry.aclose()
        assert srv.requests == 2 and srv.clients() == {CLIENTS[client]: 2}


async def test_connection_refused_is_a_model_error() -> None:
    with LoopbackServer() as srv:
        url = srv.base_url
    registry = ModelRegistry(
        {"gone": ModelEntry(model="m", base_url=url, max_retries=0, api_key_env="OPENAI_API_KEY")},
        {"OPENAI_API_KEY": "k"},
    )
    with pytest.raises(ModelError, match="cannot connect"):
        await registry.get("gone").complete(USER)
    await registry.aclose()


async def test_entries_are_used_as_given_and_an_own_endpoint_sends_no_key_unless_named() -> None:
    """The registry takes the models file's pydantic entries as they are: a model's price and
    batch settings are the entry's own objects; an entry with its own base_url and no
    'api_key_env' sends no key (a local server) even with $OPENAI_API_KEY set."""
    with LoopbackServer(api_key="no-key") as srv:
        price = Price(input=1, output=2)
        entries = {
            "local": ModelEntry(model="m", base_url=srv.base_url, price=price, batch=True),
            "named": ModelEntry(model="m", base_url=srv.base_url, api_key_env="OPENAI_API_KEY"),
        }
        registry = ModelRegistry(entries, {"OPENAI_API_KEY": SECRET})
        local = registry.get("local")
        assert local.price is price and local.batch == BatchSettings()  # type: ignore[attr-defined]
        assert (await local.complete(USER)).text == "hello there, model"
        with pytest.raises(ModelError, match="HTTP 401"):
            await registry.get("named").complete(USER)
        await registry.aclose()


# -- limits --------------------------------------------------------------------------------------


async def test_concurrency_limit_caps_requests_in_flight() -> None:
    with LoopbackServer(latency=0.1) as srv:
        registry = registry_for(srv, max_concurrency=3)
        model = registry.get("loop")
        prompts = [[{"role": "user", "content": f"p{i}"}] for i in range(9)]
        start = time.monotonic()
        await asyncio.gather(*(model.complete(p) for p in prompts))
        elapsed = time.monotonic() - start
        await registry.aclose()
        assert srv.max_in_flight == 3
        assert elapsed >= 0.3 - 0.02  # three waves of 0.1 s
        assert set(srv.requests_by_prompt()) == {prompt_id(p) for p in prompts}


async def test_requests_per_minute_paces_calls() -> None:
    with LoopbackServer() as srv:
        registry = registry_for(srv, rpm=600)  # 10 a second, bursts of 10
        model = registry.get("loop")
        start = time.monotonic()
        await asyncio.gather(
            *(model.complete([{"role": "user", "content": f"r{i}"}]) for i in range(20))
        )
        elapsed = time.monotonic() - start
        await registry.aclose()
    assert srv.requests == 20
    assert elapsed >= 0.9  # 10 at once, then 10 more at 10/s


async def test_tokens_per_minute_paces_calls() -> None:
    with LoopbackServer() as srv:
        # each prompt is 400 characters -> 100 tokens, plus max_tokens 20 -> 120 tokens a call
        registry = registry_for(srv, tpm=60 * 240, settings={"max_tokens": 20})
        model = registry.get("loop")
        start = time.monotonic()
        await asyncio.gather(
            *(model.complete([{"role": "user", "content": f"{i:04d}" * 100}]) for i in range(6))
        )
        elapsed = time.monotonic() - start
        await registry.aclose()
    # bucket of 240 tokens passes 2 calls at once, then 2 a second: 6 calls need >= 2 s
    assert srv.requests == 6
    assert elapsed >= 1.9
