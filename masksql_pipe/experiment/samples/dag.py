"""The ``dag`` sample: six small functions wired as the A..F graph of the Pipelines seed.

Each node combines its inputs' results: A upper-cases the case's word, B reverses A, C
multiplies A's length by n, D joins B and C, E squares n, F joins D and E. A case passes when
F equals its ``expected`` field. Run it: ``python main.py --data data/samples/dag --pipeline dag``.
"""

from __future__ import annotations

from typing import Any

from masksql_pipe.experiment.config import get_dotted
from masksql_pipe.experiment.functions import RESULTS_KEY, FunctionStage
from masksql_pipe.experiment.pipeline import ConfiguredPipeline


class DagPipeline(ConfiguredPipeline):
    """Cases ``{"id", "word", "n", "expected"}`` through A..F; each node reads its inputs."""

    _name = "dag"
    _description = (
        "The A..F graph of the seed: string and number transforms where every node "
        "combines the results of its inputs (no model needed)."
    )

    def defaults(self) -> dict[str, Any]:
        """The default configuration, before a config file or dotted overrides change it."""
        return {"D": {"separator": ":"}, "F": {"separator": "|"}}

    def stages(self) -> list[dict[str, Any]]:
        """The graph as node specs; D and F take their separators from the config."""
        config = self.config()
        d_separator = str(get_dotted(config, "D.separator"))
        f_separator = str(get_dotted(config, "F.separator"))

        async def a(context: dict[str, Any]) -> str:
            return str(context["case"]["word"]).upper()

        async def b(context: dict[str, Any]) -> str:
            return context["stages"]["A"][::-1]

        async def c(context: dict[str, Any]) -> int:
            return len(context["stages"]["A"]) * int(context["case"]["n"])

        async def d(context: dict[str, Any]) -> str:
            results = context["stages"]
            return f"{results['B']}{d_separator}{results['C']}"

        async def e(context: dict[str, Any]) -> int:
            return int(context["case"]["n"]) ** 2

        async def f(context: dict[str, Any]) -> str:
            results = context["stages"]
            return f"{results['D']}{f_separator}{results['E']}"

        nodes = [
            {"name": "A", "function": a, "inputs": []},
            {"name": "B", "function": b, "inputs": ["A"]},
            {"name": "C", "function": c, "inputs": ["A"]},
            {"name": "D", "function": d, "inputs": ["B", "C"]},
            {"name": "E", "function": e, "inputs": []},
            {"name": "F", "function": f, "inputs": ["D", "E"]},
        ]
        return with_settings(nodes, {"D": config["D"], "F": config["F"]})

    def case_passed(self, row: dict[str, Any]) -> bool | None:
        """F equals the case's ``expected`` text (None for a case without one)."""
        if "expected" not in row:
            return None
        return (row.get(RESULTS_KEY) or {}).get("F") == row["expected"]

    def case_result(self, row: dict[str, Any]) -> Any:
        """F's result, the end of the graph."""
        return (row.get(RESULTS_KEY) or {}).get("F")


def with_settings(
    nodes: list[dict[str, Any]], settings: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Node specs whose functions become FunctionStages carrying the settings they captured.

    The settings join the stage fingerprint: changing ``D.separator`` makes D (and what depends
    on it) stale, instead of reusing outputs made with the old value.
    """
    return [
        {
            **node,
            "function": FunctionStage(
                node["name"], node["function"], list(node["inputs"]), settings.get(node["name"])
            ),
        }
        for node in nodes
    ]
