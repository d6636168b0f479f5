"""Digest of the project code a stage runs: its module and every project module it imports.

A stage's output depends on helper modules (a tokenizer, a masking routine) as much as on its
class body. The module of the stage class is parsed, its imports are followed transitively, and
every module whose source lives outside the Python installation (the standard library and
site-packages) is hashed. Editing any of them makes the stages that import it stale.
Results are cached per process: sources do not change under a running pipeline.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.machinery
import importlib.util
import site
import sys
import sysconfig
from pathlib import Path

_OUTSIDE_PROJECT = tuple(
    str(Path(p).resolve())
    for p in {
        *site.getsitepackages(),
        site.getusersitepackages(),
        sysconfig.get_paths()["stdlib"],
        sysconfig.get_paths()["platstdlib"],
    }
    if p
)


def _find_spec(name: str) -> importlib.machinery.ModuleSpec | None:
    """``importlib.util.find_spec`` without importing a parent that is not imported yet.

    (find_spec imports the parents: probing ``pkg.mod.Class`` would import ``pkg.mod`` and,
    through it, a library the run never needs, such as the HTTP client.)
    """
    parent = name.rpartition(".")[0]
    if parent and parent not in sys.modules:
        parent_spec = _find_spec(parent)
        locations = parent_spec.submodule_search_locations if parent_spec else None
        if not locations:
            return None
        return importlib.machinery.PathFinder.find_spec(name, list(locations))
    return importlib.util.find_spec(name)


@functools.cache
def _project_source(module: str) -> Path | None:
    """The source file of ``module`` if it is project code (not stdlib or an installed library)."""
    loaded = sys.modules.get(module)
    origin = getattr(loaded, "__file__", None)
    if origin is None:
        try:
            spec = _find_spec(module)
        except (ImportError, ValueError):
            return None
        origin = spec.origin if spec else None
    if not origin or not origin.endswith(".py"):
        return None
    path = Path(origin).resolve()
    if str(path).startswith(_OUTSIDE_PROJECT):
        return None
    return path


def _imported_modules(module: str, path: Path, source: str) -> set[str]:
    """Names of the modules ``module`` imports (relative imports resolved; submodules included)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return found
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1] if node.level > 1 else base
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if not target:
                continue
            for alias in node.names:
                found.add(_defining_module(target, alias.name))
    return found


def _defining_module(package: str, name: str, depth: int = 0) -> str:
    """The module ``from package import name`` really depends on, found without importing.

    A submodule itself; for a name a package's ``__init__`` re-exports (``from .x import
    name``) the module it comes from, so importing one class from a package does not pull in
    the whole package. Static, so the answer does not depend on what happens to be imported.
    """
    submodule = f"{package}.{name}"
    if _is_module(submodule):
        return submodule
    path = _project_source(package)
    if path is None or path.name != "__init__.py" or depth > 5:
        return package
    for node in ast.walk(_parsed(path)):
        if isinstance(node, ast.ImportFrom) and any(
            (alias.asname or alias.name) == name for alias in node.names
        ):
            original = next(a.name for a in node.names if (a.asname or a.name) == name)
            base = package.split(".")
            if node.level > 1:
                base = base[: len(base) - node.level + 1]
            source = ".".join([*base, node.module] if node.module else base)
            if not node.level:
                source = node.module or package
            return _defining_module(source, original, depth + 1)
        if exported := _lazy_export(node, name):  # the lazy packages' export table
            return _defining_module(exported, name, depth + 1)
    return package


def _lazy_export(node: ast.AST, name: str) -> str | None:
    """The module an `_EXPORTS = {module: (names...)}` table (see masksql_pipe.lazy) names for
    `name`, when `node` is that table."""
    if not (
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets)
        and isinstance(node.value, ast.Dict)
    ):
        return None
    for key, value in zip(node.value.keys, node.value.values, strict=True):
        names = value.elts if isinstance(value, ast.Tuple) else []
        if isinstance(key, ast.Constant) and any(
            isinstance(n, ast.Constant) and n.value == name for n in names
        ):
            return str(key.value)
    return None


@functools.cache
def _parsed(path: Path) -> ast.Module:
    """The syntax tree of a project source file (an empty module when it does not parse)."""
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError):
        return ast.Module(body=[], type_ignores=[])


@functools.cache
def _module_source(module: str) -> tuple[str, frozenset[str]] | None:
    """(sha256 of the source, project modules it imports) for a project module, else None."""
    path = _project_source(module)
    if path is None:
        return None
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    imports = frozenset(
        name
        for name in _imported_modules(module, path, source)
        if name != module and _is_module(name) and _project_source(name) is not None
    )
    return hashlib.sha256(source.encode()).hexdigest(), imports


def _is_module(name: str) -> bool:
    """True when ``name`` is an importable module (not a class or function of one)."""
    if name in sys.modules:
        return True
    try:
        return _find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        return False


@functools.cache
def _closure(module: str) -> tuple[tuple[str, str], ...]:
    """(module, short source digest) of ``module`` and every project module it imports."""
    seen: dict[str, str] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        info = _module_source(name)
        seen[name] = info[0][:16] if info else ""
        if info:
            todo.extend(info[1] - seen.keys())
    return tuple(sorted((name, digest) for name, digest in seen.items() if digest))


def module_closure(module: str) -> dict[str, str]:
    """Source digest of every project module ``module`` uses, transitively, by module name."""
    return dict(_closure(module))


def module_closure_digest(module: str) -> str:
    """One digest over ``module_closure(module)``."""
    parts = "\n".join(f"{name}:{digest}" for name, digest in _closure(module))
    return hashlib.sha256(parts.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Functions: what one function uses, not the whole module it is written in

_MAX_DEPTH = 4


def _digest(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:16]


def code_digest(obj: object) -> str:
    """Digest of a function's or class's syntax tree (its source parsed, comments, blank lines
    and position left out), so a comment-only edit changes nothing; the bytecode of a function
    whose source is not available (a lambda built at run time, a generated function)."""
    import inspect
    import textwrap

    try:
        source = textwrap.dedent(inspect.getsource(obj))  # type: ignore[arg-type]
        return _digest(ast.dump(ast.parse(source)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        code = getattr(obj, "__code__", None)
        return _digest(_bytecode(code)) if code is not None else ""


def _bytecode(code: object) -> bytes:
    """The instructions, names and constants of a code object (nested ones included), not its
    line table: moving a function down a file does not change it."""
    parts = [getattr(code, "co_code", b""), repr(getattr(code, "co_names", ())).encode()]
    for const in getattr(code, "co_consts", ()):
        parts.append(_bytecode(const) if hasattr(const, "co_code") else repr(const).encode())
    return b"\0".join(parts)


def _names_used(code: object) -> set[str]:
    """Global names a code object (and the functions nested in it) refers to."""
    names = set(getattr(code, "co_names", ()))
    for const in getattr(code, "co_consts", ()):
        if hasattr(const, "co_code"):
            names |= _names_used(const)
    return names


def function_fingerprint(function: object, depth: int = 0) -> dict[str, object]:
    """What a function's result depends on, as JSON: its own code (syntax tree), the project
    modules and same-module helpers its global names refer to, and the values it captured.

    Unlike `module_closure` of the module it is written in, editing a neighbouring function
    of the same file changes nothing here.
    """
    code = getattr(function, "__code__", None)
    parts: dict[str, object] = {"code": code_digest(function)}
    marker = getattr(function, "__fingerprint__", None)
    if marker is not None:
        parts["marker"] = _jsonable(marker)
    if code is None or depth > _MAX_DEPTH:
        return parts
    module = getattr(function, "__module__", None)
    namespace = getattr(function, "__globals__", {})
    uses = {
        name: _global_fingerprint(namespace[name], module, depth)
        for name in sorted(_names_used(code))
        if name in namespace
    }
    parts["uses"] = {name: value for name, value in uses.items() if value is not None}
    cells = getattr(function, "__closure__", None) or ()
    parts["captured"] = {
        name: captured_fingerprint(_cell_value(cell), depth)
        for name, cell in zip(code.co_freevars, cells, strict=False)  # type: ignore[attr-defined]
    }
    return parts


def _cell_value(cell: object) -> object:
    try:
        return cell.cell_contents  # type: ignore[attr-defined]
    except ValueError:  # an empty cell (a name assigned after the function was made)
        return None


def _global_fingerprint(value: object, module: str | None, depth: int) -> object:
    """A global a function names: project code by its digest, a plain constant by value;
    None for library code and builtins (outside the project, as in `module_closure`)."""
    import types

    if isinstance(value, types.ModuleType):
        return module_closure_digest(value.__name__) if _project_source(value.__name__) else None
    home = getattr(value, "__module__", None)
    if isinstance(value, types.FunctionType | type):
        if home == module:  # a helper of the same file: its own code, not the whole file
            if isinstance(value, type):
                return {"class": code_digest(value)}
            return function_fingerprint(value, depth + 1)
        return module_closure_digest(home) if home and _project_source(home) else None
    if callable(value):
        return None
    return _jsonable(value)


def captured_fingerprint(value: object, depth: int = 0) -> object:
    """A value a function captured: a function by `function_fingerprint`; an object that says
    what it is (`__fingerprint__`, GoTaglio's `metadata()`, a model's `settings()`) by that;
    plain data by value; any other object by its type alone."""
    import types

    if isinstance(value, types.FunctionType | types.MethodType):
        return function_fingerprint(value, depth + 1)
    for attribute in ("__fingerprint__", "metadata", "settings"):
        found = getattr(value, attribute, None)
        if found is not None and not isinstance(value, type):
            try:
                return _jsonable(found() if callable(found) else found)
            except Exception:  # a describe method that fails: use the type
                break
    plain = _jsonable(value)
    if plain is not _UNKNOWN:
        return plain
    return {"object": f"{type(value).__module__}.{type(value).__qualname__}"}


_UNKNOWN = "<unknown>"


def _jsonable(value: object) -> object:
    """``value`` when it is plain JSON data (digested when long), else `_UNKNOWN`."""
    import json

    try:
        text = json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return _UNKNOWN
    return value if len(text) <= 200 else {"digest": _digest(text)}
