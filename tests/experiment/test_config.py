"""Tests for experiment configuration: markers, overrides, config files, validation, redaction."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from masksql_pipe.errors import ConfigError, PipeError
from masksql_pipe.experiment.config import (
    Internal,
    MissingSettingsError,
    Prompt,
    from_jsonable,
    get_dotted,
    load_config_file,
    loggable,
    missing_internal,
    parse_overrides,
    redact,
    resolve_config,
    set_dotted,
    set_internal,
    to_jsonable,
    validate_section,
)


def simple_defaults() -> dict:
    """The configuration of the GoTaglio `simple` sample pipeline."""
    return {
        "prepare": {
            "template": Prompt("Template file for system message"),
            "template_text": Internal(),
        },
        "infer": {
            "model": {
                "name": Prompt("Model name to use for inference stage"),
                "settings": {
                    "max_tokens": 800,
                    "temperature": 0.7,
                    "top_p": 0.95,
                    "frequency_penalty": 0,
                    "presence_penalty": 0,
                },
            }
        },
    }


# --- parse_overrides ------------------------------------------------------------------------


def test_overrides_parse_json_values_and_fall_back_to_strings() -> None:
    patch = parse_overrides(
        [
            "infer.model.name=perfect",
            "infer.model.settings.temperature=0",
            "infer.model.settings.top_p=0.5",
            "a.flag=true",
            "a.off=false",
            "a.none=null",
            'a.list=[1, 2, "x"]',
            'a.obj={"k": 1}',
            'a.quoted="42"',
            "a.empty=",
        ]
    )
    assert patch == {
        "infer.model.name": "perfect",
        "infer.model.settings.temperature": 0,
        "infer.model.settings.top_p": 0.5,
        "a.flag": True,
        "a.off": False,
        "a.none": None,
        "a.list": [1, 2, "x"],
        "a.obj": {"k": 1},
        "a.quoted": "42",
        "a.empty": "",
    }
    assert isinstance(patch["infer.model.settings.temperature"], int)
    assert patch["a.flag"] is True


def test_override_value_may_contain_equals_sign() -> None:
    assert parse_overrides(["prepare.note=a=b==c"]) == {"prepare.note": "a=b==c"}


def test_override_not_json_constant_stays_a_string() -> None:
    # NaN/Infinity are not JSON values, so they stay text rather than becoming floats.
    assert parse_overrides(["x=NaN", "y=Infinity", "z=[1,"]) == {
        "x": "NaN",
        "y": "Infinity",
        "z": "[1,",
    }


def test_later_override_wins() -> None:
    assert parse_overrides(["a=1", "a=2"]) == {"a": 2}


@pytest.mark.parametrize("item", ["infer.model.name", "=perfect", "  =1", "a..b=1", "a.=1"])
def test_malformed_override_is_an_error_naming_the_item(item: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_overrides(["ok=1", item])
    assert repr(item) in str(info.value)
    assert "\n" not in str(info.value)


# --- dotted helpers -------------------------------------------------------------------------


def test_get_and_set_dotted_with_list_indexes() -> None:
    data = {"a": {"b": [{"c": 1}, {"c": 2}]}}
    assert get_dotted(data, "a.b.1.c") == 2
    assert get_dotted(data, "a.b.-1.c") == 2
    assert get_dotted(data, "") is data
    assert get_dotted(data, "a.b.5.c", None) is None
    with pytest.raises(KeyError):
        get_dotted(data, "a.x")
    set_dotted(data, "a.b.0.c", 10)
    set_dotted(data, "a.new.deep", "v")
    assert data == {"a": {"b": [{"c": 10}, {"c": 2}], "new": {"deep": "v"}}}
    with pytest.raises(ConfigError, match=re.escape("a.b.7")):
        set_dotted(data, "a.b.7", 1)
    with pytest.raises(ConfigError, match="not a mapping"):
        set_dotted(data, "a.new.deep.x", 1)


# --- resolve_config -------------------------------------------------------------------------


def test_resolve_applies_patches_without_touching_defaults() -> None:
    defaults = simple_defaults()
    config = resolve_config(
        defaults,
        None,
        {
            "infer.model.name": "perfect",
            "prepare.template": "t.j2",
            "infer.model.settings.temperature": 0,
        },
    )
    assert config["infer"]["model"]["name"] == "perfect"
    assert config["prepare"]["template"] == "t.j2"
    assert config["infer"]["model"]["settings"]["temperature"] == 0
    assert config["infer"]["model"]["settings"]["max_tokens"] == 800
    # The defaults are not mutated.
    assert defaults == simple_defaults()
    assert missing_internal(config) == ["prepare.template_text"]


def test_missing_prompt_values_are_reported_together() -> None:
    with pytest.raises(MissingSettingsError) as info:
        resolve_config(simple_defaults(), None, {"infer.model.settings.top_p": 0.5})
    err = info.value
    assert isinstance(err, ConfigError) and isinstance(err, PipeError)
    assert err.missing == [
        ("prepare.template", "Template file for system message"),
        ("infer.model.name", "Model name to use for inference stage"),
    ]
    message = str(err)
    assert "\n" not in message
    for text in (
        "prepare.template",
        "Template file for system message",
        "infer.model.name",
        "Model name to use for inference stage",
    ):
        assert text in message


def test_supplying_one_prompt_leaves_only_the_other_missing() -> None:
    with pytest.raises(MissingSettingsError) as info:
        resolve_config(simple_defaults(), None, {"infer.model.name": "perfect"})
    assert [key for key, _ in info.value.missing] == ["prepare.template"]


def test_internal_value_cannot_be_overridden() -> None:
    patch = {"prepare.template_text": "hello", "infer.model.name": "p", "prepare.template": "t"}
    with pytest.raises(ConfigError, match=r"prepare\.template_text"):
        resolve_config(simple_defaults(), None, patch)


def test_internal_value_cannot_be_overridden_through_its_parent() -> None:
    patch = {"prepare": {"template": "t", "template_text": "x"}, "infer.model.name": "p"}
    with pytest.raises(ConfigError, match=r"prepare\.template_text"):
        resolve_config(simple_defaults(), None, patch)


def test_unknown_key_suggests_the_closest_existing_key() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config(simple_defaults(), None, {"infer.modle.name": "x"})
    assert str(info.value) == (
        "unknown setting 'infer.modle.name'; did you mean 'infer.model.name'?"
    )
    with pytest.raises(
        ConfigError, match=re.escape("did you mean 'infer.model.settings.temperature'")
    ):
        resolve_config(simple_defaults(), None, {"infer.model.settings.temprature": 0})


def test_unknown_key_without_a_close_match_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config(simple_defaults(), None, {"zzzz": 1})
    assert str(info.value) == "unknown setting 'zzzz'; the top level has: prepare, infer"
    with pytest.raises(ConfigError, match="single value"):
        resolve_config(simple_defaults(), None, {"infer.model.settings.top_p.x": 1})


def test_replacement_config_replaces_defaults() -> None:
    replacement = {
        "prepare": {"template": "file.j2"},
        "infer": {"model": {"name": "echo", "settings": {"temperature": 1}}},
    }
    config = resolve_config(simple_defaults(), replacement, {"infer.model.name": "perfect"})
    # No default settings leak into a replacement ...
    assert config["infer"]["model"]["settings"] == {"temperature": 1}
    assert config["infer"]["model"]["name"] == "perfect"
    # ... but the Internal slot of the defaults is restored for the runtime to fill.
    assert missing_internal(config) == ["prepare.template_text"]
    assert replacement["infer"]["model"]["name"] == "echo"
    # Patches are checked against the replacement, not the defaults.
    with pytest.raises(
        ConfigError, match=re.escape("unknown setting 'infer.model.settings.top_p'")
    ):
        resolve_config(simple_defaults(), replacement, {"infer.model.settings.top_p": 1})


def test_replayed_run_log_config_refills_internal_values() -> None:
    logged = {
        "prepare": {"template": "t.j2", "template_text": "stale text"},
        "infer": {"model": {"name": "perfect", "settings": {}}},
    }
    config = resolve_config(simple_defaults(), logged, {})
    assert isinstance(config["prepare"]["template_text"], Internal)


def test_set_internal_fills_only_internal_slots() -> None:
    config = resolve_config(
        simple_defaults(), None, {"infer.model.name": "p", "prepare.template": "t"}
    )
    set_internal(config, "prepare.template_text", "You are helpful.")
    assert config["prepare"]["template_text"] == "You are helpful."
    assert missing_internal(config) == []
    with pytest.raises(ConfigError, match=re.escape("infer.model.name")):
        set_internal(config, "infer.model.name", "other")
    with pytest.raises(ConfigError, match=re.escape("prepare.template_text")):
        set_internal(config, "prepare.template_text", "again")


def test_markers_round_trip_through_json() -> None:
    rendered = to_jsonable(simple_defaults())
    text = json.dumps(rendered)
    assert rendered["prepare"]["template"] == "<Prompt: Template file for system message>"
    assert rendered["prepare"]["template_text"] == "<Internal>"
    assert from_jsonable(json.loads(text)) == simple_defaults()


# --- config files ---------------------------------------------------------------------------


def test_yaml_config_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        "prepare:\n  template: sys.j2\ninfer:\n  model:\n    name: perfect\n"
        "    settings:\n      temperature: 0\n      stop: [a, b]\n",
        encoding="utf-8",
    )
    expected = {
        "prepare": {"template": "sys.j2"},
        "infer": {"model": {"name": "perfect", "settings": {"temperature": 0, "stop": ["a", "b"]}}},
    }
    assert load_config_file(path) == expected
    yml = tmp_path / "run.yml"
    yml.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_config_file(yml) == expected


def test_json_config_file_with_markers(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(
        '{"prepare": {"template": "<Prompt: which template>"}, "n": 3}', encoding="utf-8"
    )
    assert load_config_file(path) == {"prepare": {"template": Prompt("which template")}, "n": 3}


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\nb: [1, 2\nc: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    message = str(info.value)
    assert str(path) in message
    assert "invalid YAML at line" in message
    assert "\n" not in message


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "a": 1,\n  "b": \n}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 4" in message  # the '}' where a value was expected is on line 4
    assert "\n" not in message


def test_missing_and_unsupported_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config_file(tmp_path / "nope.yaml")
    other = tmp_path / "conf.toml"
    other.write_text("a = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="unsupported"):
        load_config_file(other)
    top_list = tmp_path / "list.json"
    top_list.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config_file(top_list)
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="empty"):
        load_config_file(empty)


# --- validation -----------------------------------------------------------------------------


class Settings(BaseModel):
    max_tokens: int
    temperature: float
    top_p: float = 1.0


def test_validate_section_returns_the_model() -> None:
    config = {"infer": {"model": {"settings": {"max_tokens": "12", "temperature": 0}}}}
    settings = validate_section(config, "infer.model.settings", Settings)
    assert settings == Settings(max_tokens=12, temperature=0.0, top_p=1.0)


def test_validate_section_names_every_key_at_fault() -> None:
    config = {"infer": {"model": {"settings": {"temperature": "hot"}}}}
    with pytest.raises(ConfigError) as info:
        validate_section(config, "infer.model.settings", Settings)
    message = str(info.value)
    assert "\n" not in message
    assert "infer.model.settings.temperature" in message
    assert "'hot'" in message
    assert "infer.model.settings.max_tokens: Field required" in message
    assert "top_p" not in message
    with pytest.raises(ConfigError, match=re.escape("unknown setting 'infer.modle'")):
        validate_section(config, "infer.modle", Settings)


# --- redaction ------------------------------------------------------------------------------


def test_redact_removes_secrets_at_any_depth() -> None:
    run = {
        "config": {
            "infer": {
                "model": {
                    "name": "gpt",
                    "api_key": "sk-AAA",
                    "settings": {"max_tokens": 800},
                    "endpoints": [
                        {"url": "http://127.0.0.1:1", "OPENAI_API_KEY": "sk-BBB"},
                        {"headers": {"Authorization": "Bearer sk-CCC", "X-Token": "sk-DDD"}},
                    ],
                },
            },
            "db": {"Password": "hunter2", "clientSecret": "sk-EEE", "key": "sk-FFF"},
        },
        "argv": ["--data", "d", "infer.model.api_key=sk-GGG", "infer.model.name=gpt"],
        "note": "sent header Authorization: Bearer sk-HHH",
    }
    original = json.dumps(run)
    clean = redact(run)
    text = json.dumps(clean)
    for secret in ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG", "HHH", "hunter2"):
        assert secret not in text
    assert json.dumps(run) == original  # the input is untouched
    model = clean["config"]["infer"]["model"]
    assert model["api_key"] == "***"
    assert model["endpoints"][0] == {"url": "http://127.0.0.1:1", "OPENAI_API_KEY": "***"}
    assert model["endpoints"][1]["headers"] == {"Authorization": "***", "X-Token": "***"}
    assert clean["config"]["db"] == {"Password": "***", "clientSecret": "***", "key": "***"}
    assert clean["argv"] == ["--data", "d", "infer.model.api_key=***", "infer.model.name=gpt"]
    # Settings that merely mention tokens or keys are kept.
    assert model["settings"] == {"max_tokens": 800}
    assert model["name"] == "gpt"


def test_redact_keeps_look_alike_names() -> None:
    data = {"primary_keys": [1, 2], "tokenizer": "cl100k", "keyword": "x", "total_toks": 5}
    assert redact(data) == data


def test_redact_argument_lists_and_key_shaped_text() -> None:
    argv = ["run", "--api-key", "sk-abcdefgh12345", "--data", "d", "--token=tok-1"]
    assert redact(argv) == ["run", "--api-key", "***", "--data", "d", "--token=***"]
    message = "401: Incorrect API key provided: sk-proj-ABCDEFGH1234. Check it."
    assert redact({"message": message}) == {
        "message": "401: Incorrect API key provided: sk-***. Check it."
    }


def test_loggable_renders_markers_and_hides_secrets() -> None:
    config = simple_defaults()
    config["infer"]["model"]["api_key"] = "sk-LOGSECRET1234"
    logged = loggable(config)
    assert logged["prepare"] == {
        "template": "<Prompt: Template file for system message>",
        "template_text": "<Internal>",
    }
    assert logged["infer"]["model"]["api_key"] == "***"
    assert logged["infer"]["model"]["settings"]["max_tokens"] == 800
    assert "LOGSECRET" not in json.dumps(logged)
    assert isinstance(config["prepare"]["template_text"], Internal)  # input untouched
