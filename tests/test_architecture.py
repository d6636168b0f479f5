"""The layout keeps its promises: imports point down, every imported package is declared,
one authorizer, one command list."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("masksql_pipe", "stages")


def imports_of(path: Path) -> set[str]:
    """Absolute names of the modules a source file imports (relative ones resolved)."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join([*base, node.module] if node.module else base))
            else:
                found.add(node.module or "")
    return found


def sources(*packages: str) -> list[Path]:
    return [p for name in packages for p in sorted((ROOT / name).rglob("*.py"))]


def test_nothing_below_the_cli_imports_it() -> None:
    for path in sources("masksql_pipe"):
        if path.parent.name == "cli":
            continue
        cli = {
            n
            for n in imports_of(path)
            if n == "masksql_pipe.cli.app" or n.startswith("masksql_pipe.cli.app.")
        }
        assert not cli, f"{path} imports the CLI"


def test_the_engine_knows_nothing_of_the_application() -> None:
    """No import of `stages`, and no application named in a string: MaskSQL's pipelines (and
    the default one) reach the engine through entry points only."""
    for path in sources("masksql_pipe"):
        stages = {name for name in imports_of(path) if name.split(".")[0] == "stages"}
        assert not stages, f"{path} imports {stages}"
        strings = [
            node.value
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        ]
        named = [s for s in strings if s.startswith("stages.") or s == "masksql"]
        assert not named, f"{path} names the application: {named}"


def test_pipelines_and_the_default_come_from_entry_points() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    from masksql_pipe.experiment.pipeline import builtin_pipelines, default_pipeline

    declared = project["entry-points"]["masksql_pipe.pipelines"]
    assert builtin_pipelines() == dict(sorted(declared.items()))
    assert default_pipeline() in declared


def test_application_commands_come_from_entry_points() -> None:
    """The sweep is a subcommand of the one CLI, though the engine never names it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    import masksql_pipe.cli.app as cli

    declared = project["entry-points"][cli.COMMAND_GROUP]
    assert "sweep" in declared
    assert set(declared) <= set(cli.command_names())


def test_every_imported_package_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {
        dep.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
        for dep in project["dependencies"]
    }
    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for path in [*sources(*PACKAGES, "benchmarks"), ROOT / "main.py"]:
        for name in imports_of(path):
            top = name.split(".")[0]
            if not top or top in sys.stdlib_module_names or top in (*PACKAGES, "__future__"):
                continue
            owners = {d.lower() for d in distributions.get(top, [top])}
            if not owners & declared:
                missing.setdefault(top, path.relative_to(ROOT))
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or round a loop (Tarjan)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for other in graph[node]:
            if other not in order:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], order[other])
        if low[node] == order[node]:
            group = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in order:
            visit(node)
    return found


def test_no_import_circle() -> None:
    """Every import, typing-only ones too, points one way: a shared type lives below both."""
    modules = {_module_name(path): path for path in sources(*PACKAGES)}
    graph = {
        name: {other for other in imports_of(path) if other in modules and other != name}
        for name, path in modules.items()
    }
    assert _circles(graph) == []


def test_one_read_only_authorizer() -> None:
    from stages.sql import execution, symbolic_check

    assert symbolic_check.read_only_authorizer is execution.read_only_authorizer
    for path in sources("stages"):
        text = path.read_text(encoding="utf-8")
        if "set_authorizer(" in text:
            assert "set_authorizer(read_only_authorizer)" in text, path


def test_one_command_list() -> None:
    import masksql_pipe.cli.app as cli

    names = cli.command_names()
    assert len(names) == len(set(names))
    assert {"run", "status", "show", "view", "history", "compare", "rerun"} <= set(names)
    assert not hasattr(cli, "COMMANDS")
    commands = importlib.import_module("masksql_pipe.cli.experiment")
    assert set(commands.COMMANDS) <= set(names)


LIMITS = {"timeout": 1, "max_rows": 10, "keep_rows": 1}


@pytest.mark.parametrize(
    ("section", "good", "bad", "model_name", "named"),
    [
        ("execution", LIMITS, {"timeout": 0}, "ExecutionLimits", "timeout"),
        ("execution", LIMITS, {"x": 1}, "ExecutionLimits", "x"),
        ("ranking", {"file": "", "max_tables": 2}, {"max_tables": -1}, "RankingCaps", "max_tables"),
        ("ranking", {"max_columns": 3}, {"max_columns": True}, "RankingCaps", "max_columns"),
        ("models", {"slm": "oracle", "llm": "gpt"}, {"llm": "  "}, "ModelRoles", "llm"),
    ],
)
def test_settings_sections_are_validated_by_pydantic(
    section: str, good: dict, bad: dict, model_name: str, named: str
) -> None:
    """MaskSQL's settings sections are pydantic models; a bad one is one line naming the key."""
    from masksql_pipe.errors import ConfigError
    from masksql_pipe.experiment.config import validate_section
    from stages import base
    from stages.pipelines import settings

    model = getattr(base, model_name, None) or getattr(settings, model_name)
    checked = validate_section({section: good}, section, model)
    assert all(getattr(checked, k) == v for k, v in good.items() if k in model.model_fields)
    with pytest.raises(ConfigError) as err:
        validate_section({section: {**good, **bad}}, section, model)
    assert f"{section}.{named}" in str(err.value) and "\n" not in str(err.value)
