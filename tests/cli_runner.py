"""Running ``python main.py ARGS`` for tests: in this process (fast) or as a real subprocess.

A subprocess costs about half a second of CPU (interpreter start and imports), which made
hundreds of CLI tests dominate the suite. Most of them test what a command prints, writes and
exits with, not that it is a process, so `run_in_process` calls the CLI's own `main(argv)` with
the working folder, environment, argv and import path a subprocess would have, and afterwards
puts back everything a run can leave behind in the process (see `_ProcessState`). Tests whose
point is a process (kill -9, Ctrl-C, a lock held by another process, what gets imported) start
real ones; `run_in_subprocess` is that path, and MASKSQL_TEST_SUBPROCESS=1 sends every `cli()`
call through it (to check that in-process runs hide nothing).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import subprocess
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
SUBPROCESS_ENV = "MASKSQL_TEST_SUBPROCESS"
"""Set to 1 to run every `cli()` call as a real subprocess."""

_PROJECT_PACKAGES = ("masksql_pipe", "stages")
_KEPT_FOLDERS = (*_PROJECT_PACKAGES, "tests")


def cli_environment(env: dict[str, str] | None) -> dict[str, str]:
    """The environment a CLI run gets: ours without OPENAI_* variables, the test helpers and
    the project on PYTHONPATH, then ``env``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    full_env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT)])
    full_env.update(env or {})
    return full_env


def run_in_subprocess(
    args: tuple[str, ...], cwd: Path | None, env: dict[str, str] | None, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``python main.py ARGS`` as a real subprocess."""
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=cwd or ROOT,
        env=cli_environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_in_process(
    args: tuple[str, ...], cwd: Path | None, env: dict[str, str] | None
) -> subprocess.CompletedProcess[str]:
    """``python main.py ARGS`` in this process, isolated as a subprocess run would be."""
    from masksql_pipe.cli.app import main

    stdout, stderr = io.StringIO(), io.StringIO()
    state = _ProcessState()
    try:
        state.enter(args, cwd or ROOT, cli_environment(env))
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = _exit_code(main, list(args), stderr)
    finally:
        state.restore()
    return subprocess.CompletedProcess(
        [sys.executable, str(ROOT / "main.py"), *args], code, stdout.getvalue(), stderr.getvalue()
    )


def _exit_code(main, argv: list[str], stderr: io.StringIO) -> int:  # type: ignore[no-untyped-def]
    """Run ``main(argv)``; the exit status the interpreter would give (a traceback: 1)."""
    try:
        main(argv)
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=stderr)
        return 1
    except BaseException:
        traceback.print_exc(file=stderr)
        return 1
    return 0


class _ProcessState:
    """What a CLI run may change in the process, saved before it and put back after it.

    Working folder, environment, argv, import path, modules imported from outside the project
    and the installed packages (a user's pipeline module in a temp folder), the project's
    per-process caches and registries (code digests, known secrets, warn-once sets, open
    indexes): a fresh process starts without any of them.
    """

    def enter(self, args: tuple[str, ...], cwd: Path, env: dict[str, str]) -> None:
        self._cwd = os.getcwd()
        self._environ = dict(os.environ)
        self._argv = sys.argv
        self._path = list(sys.path)
        self._modules = set(sys.modules)
        self._secrets = set(_scrub_registry())
        _reset_project_state()
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [str(ROOT / "main.py"), *args]
        # as `python main.py`: the script's folder, then PYTHONPATH, then the rest (no '')
        front = [str(ROOT), *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
        sys.path[:] = front + [p for p in self._path if p not in ("", *front)]
        importlib.invalidate_caches()  # files written since the last import are found

    def restore(self) -> None:
        os.chdir(self._cwd)
        os.environ.clear()
        os.environ.update(self._environ)
        sys.argv = self._argv
        sys.path[:] = self._path
        for name in set(sys.modules) - self._modules:
            if not _kept_module(sys.modules.get(name)):
                del sys.modules[name]
        registry = _scrub_registry()
        registry.clear()
        registry.update(self._secrets)
        _reset_project_state()


def _kept_module(module: object) -> bool:
    """Modules of the project, the test helpers and installed packages stay imported (a second
    copy of a class would break isinstance); any other (a temp folder's) is forgotten."""
    origin = getattr(module, "__file__", None)
    if origin is None:
        return True
    path = Path(origin).resolve()
    if "site-packages" in path.parts or path.is_relative_to(Path(sys.base_prefix).resolve()):
        return True
    return path.is_relative_to(ROOT) and path.parts[len(ROOT.parts)] in _KEPT_FOLDERS


def _scrub_registry() -> set[str]:
    from masksql_pipe.engine import scrub

    return scrub._registered


_PER_PROCESS = {
    "masksql_pipe.experiment.runlog": ("_warned",),
    "stages.sql.schema": ("_CACHE",),
    "stages.privacy.guard": ("_NAME_FORMS",),
    "stages.privacy.value_index": ("_DIGESTS", "_OPEN"),
}
"""Module-level memories a new process starts without (besides functools caches)."""


def _reset_project_state() -> None:
    """Empty the project's per-process caches, as a fresh interpreter would have them."""
    for name, module in list(sys.modules.items()):
        if module is None or name.partition(".")[0] not in _PROJECT_PACKAGES:
            continue
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)) and hasattr(value, "__wrapped__"):
                value.cache_clear()
        for attribute in _PER_PROCESS.get(name, ()):
            found = getattr(module, attribute, None)
            if found is not None:
                found.clear()
