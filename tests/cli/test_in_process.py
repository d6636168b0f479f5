"""The in-process CLI runner leaves nothing behind that a subprocess would not (see cli_runner)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from masksql_pipe.engine.scrub import known_secrets
from tests.conftest import cli, cli_process

PIPELINE = """
import os

from masksql_pipe.engine.basic_stages import LimitJson
from masksql_pipe.experiment import ExperimentPipeline
from masksql_pipe.engine.scrub import register_secret

register_secret({secret!r})


class Tag(ExperimentPipeline):
    _name = "tag"

    def __init__(self, registry, replacement_config=None, flat_config_patch=None):
        super().__init__({{}}, replacement_config, flat_config_patch)

    def stages(self):
        probe = os.environ.get("RUNNER_PROBE", "-")
        print(f"TAG={tag} CWD={{os.getcwd()}} ENV={{probe}}")
        return {{"LimitJson": LimitJson(0, None)}}
"""


def _folder(root: Path, tag: str, secret: str) -> Path:
    """A working folder with its own `mytag.py` and a data folder."""
    folder = root / tag
    (folder / "d").mkdir(parents=True)
    (folder / "d" / "1_input.json").write_text('[{"x": 1}]', encoding="utf-8")
    (folder / "mytag.py").write_text(PIPELINE.format(tag=tag, secret=secret), encoding="utf-8")
    return folder


def test_in_process_runs_are_isolated_like_processes(tmp_path: Path) -> None:
    before = (os.getcwd(), dict(os.environ), list(sys.path), known_secrets())
    first = _folder(tmp_path, "first", "first-secret-0123456789abcdef")
    second = _folder(tmp_path, "second", "second-secret-0123456789abcdef")
    one = cli("--data", "d", "-p", "mytag:Tag", cwd=first, env={"RUNNER_PROBE": "1"})
    two = cli("--data", "d", "-p", "mytag:Tag", cwd=second)
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    # each run imported its own folder's module, in its own folder, with its own environment
    assert f"TAG=first CWD={first} ENV=1" in one.stdout
    assert f"TAG=second CWD={second} ENV=-" in two.stdout
    # and left the test process as it found it: no module, secret, folder, variable or path
    after = (os.getcwd(), dict(os.environ), list(sys.path), known_secrets())
    assert after == before and "mytag" not in sys.modules


def test_exit_codes_and_streams_match_a_real_process(tmp_path: Path) -> None:
    absent = str(tmp_path / "absent.yaml")
    for args in (("stauts",), ("--help",), ("models", "--models", absent), ("--limt", "3")):
        inside, outside = cli(*args), cli_process(*args)
        assert (inside.returncode, inside.stdout, inside.stderr) == (
            outside.returncode,
            outside.stdout,
            outside.stderr,
        ), args
