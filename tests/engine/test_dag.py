"""DAG specs: each validation error, deterministic order, and running as file stages."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from masksql_pipe import Pipeline, SpecError, order_nodes
from tests.conftest import load, write_rows
from tests.helpers_stages import AddNumber


def node(name: str, *inputs: str) -> dict:
    return {"name": name, "function": AddNumber(1, field=f"f_{name}"), "inputs": list(inputs)}


SEED_DAG = [
    node("A"),
    node("B", "A"),
    node("C", "A"),
    node("D", "B", "C"),
    node("E"),
    node("F", "D", "E"),
]


def test_seed_dag_order() -> None:
    assert order_nodes(SEED_DAG) == ["A", "B", "C", "D", "E", "F"]


def test_spec_order_breaks_ties() -> None:
    nodes = [node("E"), node("C"), node("A"), node("Z", "A", "C", "E")]
    assert order_nodes(nodes) == ["E", "C", "A", "Z"]
    # a node listed before its input still runs after it
    nodes = [node("late", "early"), node("early"), node("end", "late")]
    assert order_nodes(nodes) == ["early", "late", "end"]


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ([], "DAG has no nodes"),
        ([node("A"), node("A")], "duplicate DAG node name 'A'"),
        ([node("A"), node("B", "X")], "DAG node 'B' names unknown input 'X'"),
        ([node("A"), node("B", "A", "A")], "DAG node 'B' lists input 'A' twice"),
        ([node("A"), node("B"), node("C", "B")], "DAG node 'A' is unreachable"),
        ([{"name": "A", "inputs": []}], "DAG node 0 lacks function"),
    ],
)
def test_validation_errors(nodes: list, message: str) -> None:
    with pytest.raises(SpecError) as info:
        order_nodes(nodes)
    assert message in str(info.value)


def test_cycle_message_shows_the_path() -> None:
    nodes = [node("A", "C"), node("B", "A"), node("C", "B"), node("D", "C")]
    with pytest.raises(SpecError) as info:
        order_nodes(nodes)
    message = str(info.value)
    assert message.startswith("DAG has a cycle: ")
    path = message.removeprefix("DAG has a cycle: ").split(" -> ")
    assert path[0] == path[-1] and set(path) == {"A", "B", "C"}
    # each step follows an edge: the next node lists the previous one as input
    inputs = {"A": ["C"], "B": ["A"], "C": ["B"]}
    for before, after in itertools.pairwise(path):
        assert before in inputs[after]


async def test_dag_runs_as_numbered_file_stages(tmp_path: Path) -> None:
    write_rows(tmp_path / "1_input.json", [{"x": 1}])
    last = await Pipeline(SEED_DAG).run(tmp_path / "1_input.json")
    files = sorted(p.name for p in tmp_path.glob("*.json"))
    assert files == [
        "1_input.json",
        "2_A.json",
        "3_B.json",
        "4_C.json",
        "5_D.json",
        "6_E.json",
        "7_F.json",
    ]
    assert load(last) == [{"x": 1, **{f"f_{n}": 2 for n in "ABCDEF"}}]


async def test_dict_spec_is_linear_in_dict_order(tmp_path: Path) -> None:
    write_rows(tmp_path / "1_input.json", [{"x": 1}])
    spec = {"second": AddNumber(2, "b"), "first": AddNumber(1, "a")}
    last = await Pipeline(spec).run(tmp_path / "1_input.json")
    assert last.name == "3_first.json"
    assert (tmp_path / "2_second.json").exists()
