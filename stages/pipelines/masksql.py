"""The MaskSQL experiment pipeline: configuration, the stage list, and the results report.

`python main.py --data DIR` runs it. A small local model ("slm") ranks the schema, finds and
links values and terms and repairs failing SQL; a large remote model ("llm") writes SQL over
symbols only. `report()` prints execution accuracy, usage and privacy figures and writes
DIR/results.json.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.table import Table

from masksql_pipe.engine.basic_stages import LimitJson
from masksql_pipe.engine.environment import environment
from masksql_pipe.engine.files import read_rows, write_json
from masksql_pipe.engine.stage import ERROR_KEY, JsonListTransformer
from masksql_pipe.errors import ConfigError
from masksql_pipe.experiment.config import validate_section
from masksql_pipe.experiment.pipeline import ConfiguredPipeline
from masksql_pipe.lm.base import Model
from stages.add_concrete_sql import AddConcreteSql
from stages.add_filtered_schema import AddFilteredSchema
from stages.add_inference_attack import AddInferenceAttack
from stages.add_question_attack import AddQuestionAttack
from stages.add_symbol_table import AddSymbolTable
from stages.add_symbolic_question import AddSymbolicQuestion
from stages.add_symbolic_schema import AddSymbolicSchema
from stages.audit_leaks import AuditLeaks, template_words
from stages.base import ExecutionLimits, LlmStage
from stages.calc_exec_acc import CalcExecAcc
from stages.classify_values import ClassifyValues
from stages.dataset.layout import detect_layout, prepare_input
from stages.dataset.spider import SCHEMA_PROBLEM_KEY, DatasetMixin, default_template, file_digest
from stages.detect_values import DetectValues
from stages.execute_concrete_sql import ExecuteConcreteSql
from stages.generate_symbolic_sql import GenerateSymbolicSql
from stages.link_schema import LinkSchema
from stages.link_values import LinkValues
from stages.metrics.breakdowns import research_figures, research_rows
from stages.pipelines.settings import DataFiles, ModelRoles, RankingCaps
from stages.privacy.audit import summarize_leaks
from stages.privacy.guard import GuardPolicy
from stages.rank_schema_from_file import RankSchemaFromFile
from stages.rank_schema_items import RankSchemaItems
from stages.repair_sql import RepairSql
from stages.repair_symbolic_sql import RepairSymbolicSql
from stages.results import Results

TEMPLATES = {
    "rank_schema_items": "slm",
    "detect_values": "slm",
    "link_values": "slm",
    "classify_values": "slm",
    "link_schema": "slm",
    "generate_symbolic_sql": "llm",
    "repair_symbolic_sql": "llm",
    "repair_sql": "slm",
    "inference_attack": "llm",
    "question_attack": "llm",
}
"""Template name of each model stage -> the model role it uses."""

RESULTS_FILE = "results.json"

POLICIES = ("full", "category")
"""Values of `privacy.policy`."""

LLM_STAGES = ("GenerateSymbolicSql", "RepairSymbolicSql", "AddInferenceAttack", "AddQuestionAttack")
"""The stages whose prompts go to the remote model: the leak audit reads their prompt logs."""


def env_model(variable: str) -> str:
    """A model name from the environment or ./.env (as MaskSQL reads SLM_MODEL/LLM_MODEL)."""
    return (environment().get(variable) or "").strip() or "oracle"


class MaskSqlPipeline(ConfiguredPipeline):
    """Privacy-preserving text-to-SQL (MaskSQL) over a Spider-layout dataset folder."""

    _name = "masksql"
    _description = (
        "MaskSQL: mask schema names and values with symbols locally, let the remote model "
        "write symbolic SQL, unmask, execute and score execution accuracy and privacy."
    )

    def defaults(self) -> dict[str, Any]:
        """The default configuration, before a config file or dotted overrides change it."""
        return {
            "models": {"slm": env_model("SLM_MODEL"), "llm": env_model("LLM_MODEL")},
            "schema": "ranked",
            "ranking": {"file": "", "max_tables": 0, "max_columns": 0, "keep_text_column": True},
            "dataset": "auto",
            "data": {"tables": "", "databases": "", "schema_check": "stop"},
            "execution": {
                "timeout": 5.0,
                "max_rows": 10000,
                "keep_rows": 5,
                "max_result_mb": 64,
                "max_total_mb": 256,
            },
            "templates": {name: "" for name in TEMPLATES},
            "privacy": {"mask": self._masked, "policy": "full", **GuardPolicy().to_dict()},
        }

    # -- set-up -------------------------------------------------------------------------------

    def _models(self) -> dict[str, Model]:
        """Resolve slm and llm now, so a wrong name or a missing key fails before any row."""
        if self._registry is None:
            from masksql_pipe.lm.registry import ModelRegistry

            self._registry = ModelRegistry.from_environment()
        roles = validate_section(self.config(), "models", ModelRoles)
        return {role: self._registry.get(name) for role, name in roles}

    def _role(self, template: str) -> str:
        """The model role that answers the stage of `template` (baselines re-route roles)."""
        return TEMPLATES[template]

    def _template(self, name: str) -> Path:
        chosen = self.config()["templates"].get(name) or ""
        if not chosen:
            return default_template(name)
        path = Path(chosen)
        if not path.is_absolute() and not path.is_file() and self.data_dir is not None:
            path = Path(self.data_dir) / chosen
        if not path.is_file():
            raise ConfigError(f"setting 'templates.{name}': template file {chosen!r} not found")
        return path

    def describe(self) -> str:
        """One line naming the models this run uses."""
        names = self.config()["models"]
        offline = {"oracle": "offline oracle: answers from gold data", "echo": "offline echo"}
        notes = sorted({offline[n] for n in names.values() if n in offline})
        note = f" ({'; '.join(notes)})" if notes else ""
        schema = self.config()["schema"]
        privacy, masked = self._privacy()
        policy = self._policy()
        mode = f"masked ({policy}), guard: {privacy['guard']}" if masked else "UNMASKED baseline"
        return f"models: slm={names['slm']} llm={names['llm']}{note}; schema: {schema}; {mode}"

    _masked = True
    """Default of `privacy.mask`: False in the unmasked baseline pipeline."""

    def _privacy(self) -> tuple[dict[str, Any], bool]:
        """The guard settings (validated) and whether the llm sees masked text."""
        settings = dict(self.config().get("privacy") or {})
        masked = settings.pop("mask", True)
        settings.pop("policy", None)  # what is masked, not how the guard works: _policy()
        if not isinstance(masked, bool):
            raise ConfigError(f"setting 'privacy.mask' must be true or false, got {masked!r}")
        return GuardPolicy.from_settings(settings).to_dict(), masked

    def _policy(self) -> str:
        """`privacy.policy`: `full` (mask every name and value) or `category` (mask names and
        only the values the small model puts in a sensitive category; stages.classify_values)."""
        policy = (self.config().get("privacy") or {}).get("policy", "full")
        if policy not in POLICIES:
            raise ConfigError(
                f"setting 'privacy.policy' must be 'full' or 'category', got {policy!r}"
            )
        return str(policy)

    def _layout(self) -> Any:
        """The dataset layout (setting `dataset`: auto, spider or bird)."""
        return detect_layout(self.data_dir, str(self.config().get("dataset", "auto")))

    def prepare_input(self) -> None:
        """A BIRD folder: write 1_input.json as a copy of dev.json (see stages.dataset.layout)."""
        if self.data_dir is not None:
            prepare_input(Path(self.data_dir), self._layout())

    def input_source(self) -> Path | None:
        """A BIRD folder's question file (dev.json) that the first run copies to 1_input.json."""
        if self.data_dir is None:
            return None
        layout = self._layout()
        source = Path(self.data_dir) / layout.questions
        return source if layout.questions != "1_input.json" and source.is_file() else None

    def _ranking(self, schema: str, data: dict[str, str]) -> JsonListTransformer | None:
        """The RESDSQL ranking stage for `schema: resdsql`; None for the other choices."""
        if schema not in ("ranked", "full", "resdsql"):
            raise ConfigError(
                f"setting 'schema' must be 'ranked', 'full' or 'resdsql', got {schema!r}"
            )
        if schema != "resdsql":
            return None
        file = str(self.config()["ranking"].get("file") or "")
        if not file:
            raise ConfigError("setting 'schema=resdsql' needs 'ranking.file' (RESDSQL output)")
        return RankSchemaFromFile(file, **data)

    def _caps(self) -> dict[str, Any]:
        """`ranking.max_tables` / `ranking.max_columns` (0: no cap) and
        `ranking.keep_text_column`, validated."""
        return validate_section(self.config(), "ranking", RankingCaps).model_dump()

    def _filtered_schema(
        self, data: dict[str, str], caps: dict[str, Any], schema_check: str
    ) -> AddFilteredSchema:
        """AddFilteredSchema, told which input rows the run uses (its preflight checks their
        databases against tables.json)."""
        stage = AddFilteredSchema(**data, **caps, schema_check=schema_check)
        if self.options is not None:
            stage.window = (self.options.start, self.options.limit)
        return stage

    def stages(self) -> dict[str, JsonListTransformer]:
        """Resolve models and templates first, then the MaskSQL stages in order."""
        config = self.config()
        privacy, masked = self._privacy()
        by_category = self._policy() == "category" and masked
        layout = self._layout()
        files = validate_section(config, "data", DataFiles)
        data = {
            "tables": files.tables or layout.tables,
            "databases": files.databases or layout.databases,
        }
        from_file = self._ranking(config["schema"], data)
        caps = self._caps()
        models = self._models()
        templates = {name: self._template(name) for name in TEMPLATES}
        limits = validate_section(config, "execution", ExecutionLimits)
        options = self.options

        def model_stage(cls: type, name: str, **extra: Any) -> JsonListTransformer:
            chosen = templates[name]
            template = None if chosen == default_template(name) else chosen
            if issubclass(cls, LlmStage):
                extra = {**extra, "privacy": privacy, "masked": masked}
            return cls(models[self._role(name)].name, template, **data, **extra)

        llm_templates = [templates[n] for n, role in TEMPLATES.items() if role == "llm"]

        stages: dict[str, JsonListTransformer] = {
            "LimitJson": LimitJson(
                options.start if options else 0, options.limit if options else None
            ),
            "RankSchemaItems": from_file
            or model_stage(RankSchemaItems, "rank_schema_items", full=config["schema"] == "full"),
            "AddFilteredSchema": self._filtered_schema(data, caps, files.schema_check),
            "AddSymbolTable": AddSymbolTable(**data),
            "DetectValues": model_stage(DetectValues, "detect_values"),
            "LinkValues": model_stage(LinkValues, "link_values"),
            **(
                {"ClassifyValues": model_stage(ClassifyValues, "classify_values")}
                if by_category
                else {}
            ),
            "LinkSchema": model_stage(LinkSchema, "link_schema"),
            "AddSymbolicSchema": AddSymbolicSchema(**data, masked=masked),
            "AddSymbolicQuestion": AddSymbolicQuestion(**data, privacy=privacy, masked=masked),
            "GenerateSymbolicSql": model_stage(GenerateSymbolicSql, "generate_symbolic_sql"),
            "RepairSymbolicSql": model_stage(RepairSymbolicSql, "repair_symbolic_sql"),
            "AddConcreteSql": AddConcreteSql(**data, masked=masked),
            "ExecuteConcreteSql": ExecuteConcreteSql(**data, limits=limits),
            "RepairSql": model_stage(RepairSql, "repair_sql", limits=limits),
            "CalcExecAcc": CalcExecAcc(**data, limits=limits),
            "AddInferenceAttack": model_stage(AddInferenceAttack, "inference_attack"),
            "AddQuestionAttack": model_stage(AddQuestionAttack, "question_attack"),
            "AuditLeaks": AuditLeaks(
                **data, llm_stages=list(LLM_STAGES), ignore_words=template_words(llm_templates)
            ),
            "Results": Results(),
        }
        if self.data_dir is not None:
            digest = file_digest(Path(self.data_dir) / data["tables"])
            for stage in stages.values():
                if isinstance(stage, DatasetMixin):
                    stage.tables_digest = digest
        return stages

    # -- cases ----------------------------------------------------------------------------------

    def case_id(self, row: dict[str, Any], index: int) -> str:
        """The Spider question_id when the row has one."""
        if "question_id" in row:
            return str(row["question_id"])
        return super().case_id(row, index)

    def case_passed(self, row: dict[str, Any]) -> bool | None:
        """Passed when the prediction's execution matches the gold query's."""
        if ERROR_KEY in row:
            return False
        if "exec_acc" not in row:
            return None
        return row["exec_acc"] == 1

    def case_result(self, row: dict[str, Any]) -> Any:
        """The question, the SQL the pipeline produced, its score and any error."""
        result = {
            "question": row.get("question"),
            "pred_sql": row.get("pred_sql"),
            "exec_acc": row.get("exec_acc"),
        }
        if isinstance(row.get("leaks"), list):
            result["leaks"] = len(row["leaks"])
        if ERROR_KEY in row:
            result["error"] = row[ERROR_KEY]
        return result

    # -- report -------------------------------------------------------------------------------

    def report(self, last_file: Path, console: Any) -> None:
        """Print the results table and write DIR/results.json."""
        rows = read_rows(last_file)
        results = summarize(rows)
        results["models"] = dict(self.config()["models"])
        results["schema"] = self.config()["schema"]
        results["privacy"]["masked"] = self._privacy()[1]
        results["privacy"]["policy"] = self._policy()
        results["dataset"] = self._layout().name
        results["research"] = research_figures(rows)
        write_json(Path(last_file).parent / RESULTS_FILE, results)
        console.print(results_table(results))


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


def mask_coverage(row: dict[str, Any]) -> tuple[int, int] | None:
    """(masked, total) of the row's annotated `gold_links` terms, or None without annotations."""
    terms = row.get("gold_links")
    question = row.get("symbolic_question")
    if not isinstance(terms, list | dict) or not isinstance(question, str):
        return None
    words = [str(t) for t in terms if str(t).strip()]
    leaked = [
        t
        for t in words
        if re.search(r"(?<!\w)" + re.escape(t) + r"(?!\w)", question, re.IGNORECASE)
    ]
    return len(words) - len(leaked), len(words)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's figures from the last file's rows (rows with errors score 0)."""
    count = len(rows)
    correct = sum(1 for r in rows if ERROR_KEY not in r and r.get("exec_acc") == 1)
    tokens = [int(r.get("total_toks") or 0) for r in rows]
    latency = [float(r.get("total_latency") or 0.0) for r in rows]
    errors: dict[str, int] = {}
    for row in rows:
        if ERROR_KEY in row:
            stage = str(row[ERROR_KEY].get("stage", "?"))
            errors[stage] = errors.get(stage, 0) + 1
    reid = [r["reidentification"] for r in rows if isinstance(r.get("reidentification"), dict)]
    symbols = sum(int(x.get("symbols", 0)) for x in reid)
    found = sum(int(x.get("reidentified", 0)) for x in reid)
    coverage = [c for c in (mask_coverage(r) for r in rows) if c is not None]
    masked = sum(c[0] for c in coverage)
    terms = sum(c[1] for c in coverage)
    mismatched = sum(1 for r in rows if SCHEMA_PROBLEM_KEY in r)
    return {
        "rows": count,
        **({"schema_mismatch_rows": mismatched} if mismatched else {}),
        "exec_acc": round(correct / count, 6) if count else None,
        "correct": correct,
        "tokens": {"total": sum(tokens), "mean": _mean([float(t) for t in tokens])},
        "latency": {"total": round(sum(latency), 6), "mean": _mean(latency)},
        "cost": run_cost(rows),
        "privacy": {
            "leak_audit": summarize_leaks(rows),
            "reidentification_rate": round(found / symbols, 6) if symbols else None,
            "reidentification_mean": _mean([float(x.get("rate", 0.0)) for x in reid]),
            "symbols": symbols,
            "reidentified": found,
            "attacked_rows": len(reid),
            "mask_coverage": round(masked / terms, 6) if terms else None,
            "annotated_terms": terms,
        },
        "errors": {"rows": sum(errors.values()), "by_stage": errors},
    }


def run_cost(rows: list[dict[str, Any]]) -> float | None:
    """Dollars the rows' model calls cost (`total_cost`; cached answers cost nothing), or None
    when no model had a price: tokens only, never a made-up figure."""
    costs = [r["total_cost"] for r in rows if isinstance(r.get("total_cost"), int | float)]
    return round(sum(costs), 8) if costs else None


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    if percent:
        return f"{100 * value:.2f}%"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def results_table(results: dict[str, Any]) -> Table:
    """The figures as a rich table."""
    table = Table(title="MaskSQL results", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    privacy = results["privacy"]
    table.add_row("rows", str(results["rows"]))
    if results.get("schema_mismatch_rows"):
        table.add_row(
            "rows whose database disagrees with tables.json (data.schema_check: warn)",
            str(results["schema_mismatch_rows"]),
        )
    audit = privacy.get("leak_audit") or {}
    if audit.get("incomplete"):
        table.add_row("rows with a leak (audit)", f"unknown ({audit['incomplete']})")
    elif audit.get("audited_rows"):
        kinds = ", ".join(f"{k} {v}" for k, v in audit["by_kind"].items())
        table.add_row(
            "rows with a leak (audit)",
            f"{_fmt(audit['leak_rate'], True)} "
            f"({audit['rows_with_leaks']}/{audit['audited_rows']} rows; {kinds})",
        )
    table.add_row(
        "execution accuracy",
        f"{_fmt(results['exec_acc'], True)} ({results['correct']}/{results['rows']})",
    )
    for metric, value in research_rows(results["research"]) if "research" in results else []:
        table.add_row(metric, value)
    table.add_row(
        "tokens total / mean", f"{results['tokens']['total']} / {_fmt(results['tokens']['mean'])}"
    )
    table.add_row(
        "latency s total / mean",
        f"{results['latency']['total']:.3f} / {results['latency']['mean'] or 0:.3f}",
    )
    if results.get("cost") is not None:
        table.add_row("cost $ (priced models; cached answers free)", f"{results['cost']:.4f}")
    attacker = results.get("models", {}).get("llm")
    note = "; the offline oracle attacker guesses nothing" if attacker == "oracle" else ""
    table.add_row(
        "re-identification (attacker-model estimate)",
        f"{_fmt(privacy['reidentification_rate'], True)} "
        f"({privacy['reidentified']}/{privacy['symbols']} symbols{note})",
    )
    table.add_row(
        "mask coverage",
        f"{_fmt(privacy['mask_coverage'], True)} ({privacy['annotated_terms']} annotated terms)",
    )
    by_stage = results["errors"]["by_stage"]
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(by_stage.items()))
    table.add_row(
        "rows with errors", f"{results['errors']['rows']}" + (f" ({detail})" if detail else "")
    )
    return table


class UnmaskedSqlPipeline(MaskSqlPipeline):
    """The same MaskSQL stages with masking off: the llm sees the real schema and question.

    The baseline that states the privacy cost: EA(masked) against EA(unmasked), same models.
    """

    _name = "unmasked"
    _description = (
        "MaskSQL's stages with masking off (privacy.mask=false): the remote model sees real "
        "names and values; the accuracy baseline for the privacy cost."
    )
    _masked = False
