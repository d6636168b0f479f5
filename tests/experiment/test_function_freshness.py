"""A function stage reruns when what it used changed, and only then: its own code (a
comment-only edit is no change), the project code it names, the values it captured, and the
configuration keys it read in its last run. Through the CLI on a copy of the seed's
SimplePipeline with an offline model, edited in tmp_path."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tests.conftest import cli, write_rows

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = "You are a calculator. Case {{ case.id }}: reply with the number only.\n"
WIDE = {"COLUMNS": "200"}
STAGES = ("2_prepare", "3_infer", "4_extract", "5_assess")


def seed_copy(tmp_path: Path) -> tuple[Path, tuple[str, ...]]:
    """The seed's pipelines copied as ``mypipes.py`` beside a data folder; the run arguments."""
    shutil.copy(ROOT / "tests" / "seed_pipelines.py", tmp_path / "mypipes.py")
    (tmp_path / "system.j2").write_text(TEMPLATE, encoding="utf-8")
    data = tmp_path / "data"
    write_rows(data / "1_input.json", [{"id": "a", "user": "42", "answer": 42}])
    args = (
        "--data",
        str(data),
        "--pipeline",
        "mypipes:SimplePipeline",
        f"prepare.template={tmp_path / 'system.j2'}",
        "infer.model.name=echo",
    )
    return data, args


def ran(stderr: str) -> set[str]:
    """The stages a run computed (the others say "up to date, skipped")."""
    skipped = set(re.findall(r"(\d+_\w+): up to date, skipped", stderr))
    return {key for key in STAGES if key not in skipped}


def status_lines(args: tuple[str, ...], cwd: Path) -> dict[str, str]:
    """`status`'s line for each stage."""
    proc = cli("status", *args, cwd=cwd, env=WIDE)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr
    return {key: next(line for line in text.splitlines() if key in line) for key in STAGES}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_setting_reruns_only_the_stage_that_read_it(tmp_path: Path) -> None:
    _, args = seed_copy(tmp_path)
    first = cli(*args, cwd=tmp_path, env=WIDE)
    assert first.returncode == 0, first.stderr
    again = cli(*args, cwd=tmp_path, env=WIDE)
    assert ran(again.stderr) == set(), again.stderr

    hotter = (*args, "infer.model.settings.temperature=0.2")
    lines = status_lines(hotter, tmp_path)
    assert "up to date" in lines["2_prepare"], lines
    assert "setting infer.model.settings.temperature" in lines["3_infer"], lines
    proc = cli(*hotter, cwd=tmp_path, env=WIDE)
    assert proc.returncode == 0, proc.stderr
    assert "2_prepare" not in ran(proc.stderr)
    assert {"3_infer", "4_extract", "5_assess"} <= ran(proc.stderr), proc.stderr


def test_a_comment_changes_nothing_and_an_edit_reruns_that_stage(tmp_path: Path) -> None:
    _, args = seed_copy(tmp_path)
    first = cli(*args, cwd=tmp_path, env=WIDE)
    assert first.returncode == 0, first.stderr
    module = tmp_path / "mypipes.py"

    edit(
        module,
        "        async def extract(context):\n",
        "        async def extract(context):\n"
        "            # a comment the stage does not depend on\n",
    )
    edit(module, "# Compare the model response", "# Compare (reworded) the model response")
    proc = cli(*args, cwd=tmp_path, env=WIDE)
    assert ran(proc.stderr) == set(), proc.stderr

    edit(module, 'float(context["stages"]["infer"])', 'float(context["stages"]["infer"]) + 1')
    lines = status_lines(args, tmp_path)
    assert "up to date" in lines["2_prepare"] and "up to date" in lines["3_infer"], lines
    assert "code of the function" in lines["4_extract"], lines
    proc = cli(*args, cwd=tmp_path, env=WIDE)
    assert proc.returncode == 0, proc.stderr
    assert ran(proc.stderr) == {"4_extract", "5_assess"}, proc.stderr


def test_the_stage_settings_read_are_sent(tmp_path: Path) -> None:
    """`infer.model.settings` (the seed's config) go out with infer's call, over the models
    file's own, and a change to them reruns infer rather than reusing its answers."""
    from masksql_pipe.loopback.server import LoopbackServer
    from tests.lm_fixtures import SECRET

    _, args = seed_copy(tmp_path)
    args = tuple(a for a in args if not a.startswith("infer.model.name"))
    with LoopbackServer(reply=lambda messages: "42") as server:
        models = tmp_path / "models.yaml"
        models.write_text(
            f"models:\n  loop:\n    model: m\n    base_url: '{server.base_url}'\n"
            "    settings: {temperature: 1.0, seed: 7}\n",
            encoding="utf-8",
        )
        env = {"OPENAI_API_KEY": SECRET, **WIDE}
        run = (*args, "--models", str(models), "infer.model.name=loop")
        proc = cli(*run, "infer.model.settings.temperature=0.25", cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
        proc = cli(*run, "infer.model.settings.temperature=0.5", cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
        first, second = server.bodies()
    assert (first["temperature"], first["top_p"], first["max_tokens"]) == (0.25, 0.95, 800)
    assert first["seed"] == 7  # the models file's own setting stays
    assert second["temperature"] == 0.5


KEYED = """
from glom import glom

from masksql_pipe.experiment import Pipeline


class Keyed(Pipeline):
    def __init__(self, registry, replacement_config, flat_config_patch):
        defaults = {"scale": {"by": 2, "unused": 0}, "shift": {"by": 1}}
        super().__init__(defaults, replacement_config, flat_config_patch)

    def stages(self):
        async def scale(context):
            return context["case"]["x"] * glom(context, "metadata.config.scale.by")

        async def shift(context):
            return context["stages"]["scale"] + self.config()["shift"]["by"]

        return {"scale": scale, "shift": shift}
"""


def test_only_the_keys_read_count(tmp_path: Path) -> None:
    """A leaf read through glom on the context and one through the pipeline's config()."""
    (tmp_path / "keyed.py").write_text(KEYED, encoding="utf-8")
    data = tmp_path / "data"
    write_rows(data / "1_input.json", [{"id": "a", "x": 5}])
    args = ("--data", str(data), "--pipeline", "keyed:Keyed")
    assert cli(*args, cwd=tmp_path, env=WIDE).returncode == 0
    unused = cli(*args, "scale.unused=9", cwd=tmp_path, env=WIDE)
    assert "2_scale: up to date, skipped" in unused.stderr, unused.stderr
    assert "3_shift: up to date, skipped" in unused.stderr, unused.stderr
    shifted = cli("status", *args, "shift.by=3", cwd=tmp_path, env=WIDE)
    assert "changed: setting shift.by" in shifted.stdout, shifted.stdout
    assert "2_scale.json │ 1    │        │ up to date" in shifted.stdout, shifted.stdout
    scaled = cli("status", *args, "scale.by=3", cwd=tmp_path, env=WIDE)
    assert "changed: setting scale.by" in scaled.stdout, scaled.stdout
