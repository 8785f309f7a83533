"""Finding the deployable functions in a Python file and deciding how each one travels.

A function travels as plain source when it stands alone with the file's imports: every global
name it (or a nested function, lambda or comprehension inside it) reads is a builtin, the
function itself, or a name bound by a top-level import statement of a module that does not live
next to the file. Anything else — a closure, a module-level helper, class or constant, a
decorator, a default value computed from a module-level name, a module next to the file — makes
it travel as a cloudpickle by value."""

from __future__ import annotations

import ast
import contextlib
import dis
import functools
import importlib.util
import inspect
import sys
import sysconfig
import traceback
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import NoPublicFunctionsError, SourceFileError

__all__ = [
    "FoundFunction",
    "Plan",
    "SourceFile",
    "find_functions",
    "global_names",
    "load_source_file",
    "parse_source",
    "plan_function",
    "source_path",
    "unload",
]

SOURCE = "source"
CLOUDPICKLE = "cloudpickle"

_GLOBAL_OPS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL", "STORE_NAME"})


@dataclass(frozen=True)
class SourceFile:
    """A loaded function file: its text, syntax tree and the executed module."""

    path: Path
    text: str
    tree: ast.Module
    module: types.ModuleType
    # Modules imported while loading the file that live next to it (not installed anywhere):
    # an executor cannot import them, so functions using them are pickled with them by value.
    local_modules: tuple[types.ModuleType, ...] = ()


@dataclass(frozen=True)
class FoundFunction:
    """One deployable function: the name it is bound to in the file, the object, its `def`."""

    name: str
    obj: Any
    node: ast.FunctionDef | ast.AsyncFunctionDef | None


@dataclass(frozen=True)
class Plan:
    """How one function travels, and why."""

    serializer: str
    reason: str
    # For source: the import statements (as source lines) the function needs.
    imports: tuple[str, ...] = ()
    # For cloudpickle: modules to pickle by value (the file's module and local modules it uses).
    by_value: tuple[types.ModuleType, ...] = field(default_factory=tuple)


def parse_source(text: str, filename: str) -> ast.Module:
    """Parse a Python file; a syntax error becomes a SourceFileError with file, line and caret."""
    try:
        return ast.parse(text, filename=filename)
    except SyntaxError as e:
        detail = "".join(traceback.format_exception_only(type(e), e)).rstrip()
        raise SourceFileError(f"syntax error in {filename}, line {e.lineno}:\n{detail}") from None


def _module_name(path: Path) -> str:
    stem = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in path.stem) or "functions"
    if stem[0].isdigit():
        stem = "_" + stem
    # Never shadow a module already imported here (a file called json.py, say).
    return stem if stem not in sys.modules else f"faas_user_{stem}"


@functools.lru_cache(maxsize=1)
def _install_roots() -> tuple[Path, ...]:
    paths = sysconfig.get_paths()
    return tuple(Path(paths[k]).resolve() for k in ("stdlib", "platstdlib", "purelib", "platlib"))


def _is_local(file: str | None, directory: Path) -> bool:
    """True for a module file that lives next to the deployed file (under its directory) and
    not in the standard library or site-packages: an executor cannot import it."""
    if not file:
        return False  # built-in and namespace modules
    resolved = Path(file).resolve()
    return resolved.is_relative_to(directory) and not any(resolved.is_relative_to(r) for r in _install_roots())


@contextlib.contextmanager
def _on_path(directory: Path) -> Iterator[None]:
    sys.path.insert(0, str(directory))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(directory))


def source_path(path: str | Path) -> Path:
    """The path of a function file that exists and is a `.py` file, else a SourceFileError saying
    what it is instead (Python's import machinery has no loader for other names)."""
    p = Path(path)
    if not p.exists():
        raise SourceFileError(f"no such file: {p}")
    if not p.is_file():
        raise SourceFileError(f"not a file: {p}")
    if p.suffix != ".py":
        raise SourceFileError(f"not a Python file: {p} (functions are deployed from a FILE.py)")
    return p


def load_source_file(path: str | Path) -> SourceFile:
    """Read, parse and execute a function file as a module (as `python FILE` would import it).

    The module stays registered in `sys.modules` (cloudpickle needs that to pickle it by
    value) until `unload` is called.
    """
    p = source_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SourceFileError(f"cannot read {p}: {e}") from None
    tree = parse_source(text, str(p))
    name = _module_name(p)
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:  # source_path admits only names Python can import
        raise SourceFileError(f"Python cannot import {p} as a module")
    module = importlib.util.module_from_spec(spec)
    before = set(sys.modules)
    sys.modules[name] = module
    directory = p.resolve().parent
    try:
        with _on_path(directory):
            spec.loader.exec_module(module)
    except (Exception, SystemExit) as e:  # user code: anything but Ctrl-C is a failed load
        sys.modules.pop(name, None)
        tb = "".join(traceback.format_exception(type(e), e, e.__traceback__)).rstrip()
        raise SourceFileError(f"importing {p} failed:\n{tb}") from None
    local = tuple(m for n in sorted(set(sys.modules) - before - {name})
                  if (m := sys.modules.get(n)) is not None and _is_local(getattr(m, "__file__", None), directory))
    return SourceFile(p, text, tree, module, local)


def unload(source: SourceFile) -> None:
    """Forget the module (and its local modules) registered by `load_source_file`."""
    for m in (source.module, *source.local_modules):
        if sys.modules.get(m.__name__) is m:
            del sys.modules[m.__name__]


def _top_level_names(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef | None]:
    """Names bound at top level by `def` or a plain assignment, in order of first binding,
    each with its last binding's `def` (None when the last binding is an assignment)."""
    found: dict[str, ast.FunctionDef | ast.AsyncFunctionDef | None] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[stmt.name] = stmt
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            found.update((t.id, None) for t in targets if isinstance(t, ast.Name))
    return found


def find_functions(source: SourceFile, names: Sequence[str] = ()) -> list[FoundFunction]:
    """The public top-level functions of the file (or the ones named), in file order.

    A function is public when its name does not start with `_`. Besides `def`s this finds
    functions bound by assignment (`add3 = make_adder(3)`, a lambda), but not functions the
    file merely imports.
    """
    module = source.module
    found: dict[str, FoundFunction] = {}
    for name, node in _top_level_names(source.tree).items():
        obj = module.__dict__.get(name)
        if obj is None or inspect.isclass(obj) or not callable(obj):
            continue
        if node is None and not (inspect.isfunction(obj) and obj.__module__ == module.__name__):
            continue  # an imported function, or a callable instance, bound by assignment
        found[name] = FoundFunction(name, obj, node)
    public = {n: f for n, f in found.items() if not n.startswith("_")}
    if names:
        missing = [n for n in names if n not in found]
        if missing:
            listing = ", ".join(public) or "none"
            raise NoPublicFunctionsError(
                f"no function {', '.join(repr(n) for n in missing)} in {source.path} "
                f"(public functions: {listing})")
        return [found[n] for n in dict.fromkeys(names)]
    if not public:
        private = [n for n in found if n.startswith("_")]
        hint = f"; {', '.join(private)} start with '_' and are private" if private else ""
        raise NoPublicFunctionsError(f"no public functions in {source.path}{hint}")
    return list(public.values())


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def global_names(code: types.CodeType) -> list[str]:
    """Global names a code object (and every code object nested in it) reads or writes."""
    names: dict[str, None] = {}
    for co in _code_objects(code):
        for ins in dis.get_instructions(co):
            if ins.opname in _GLOBAL_OPS and isinstance(ins.argval, str):
                names[ins.argval] = None
    return list(names)


def _import_bindings(tree: ast.Module) -> dict[str, list[ast.Import | ast.ImportFrom]]:
    """Each name bound by top-level import statements, with statements importing just it.

    All of them are kept: `import xml` and `import xml.etree.ElementTree` both bind `xml`, and
    the second is what makes `xml.etree` usable.
    """
    bound: dict[str, list[ast.Import | ast.ImportFrom]] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                bound.setdefault(alias.asname or alias.name.split(".")[0], []).append(ast.Import(names=[alias]))
        elif isinstance(stmt, ast.ImportFrom) and stmt.module != "__future__":
            for alias in stmt.names:
                if alias.name != "*":
                    bound.setdefault(alias.asname or alias.name, []).append(
                        ast.ImportFrom(module=stmt.module, names=[alias], level=stmt.level))
    return bound


def _future_imports(tree: ast.Module) -> list[str]:
    return [ast.unparse(s) for s in tree.body if isinstance(s, ast.ImportFrom) and s.module == "__future__"]


def _def_time_names(node: ast.FunctionDef | ast.AsyncFunctionDef, annotations: bool) -> list[str]:
    """Names a `def` statement evaluates in module scope: defaults (and annotations)."""
    exprs: list[ast.expr] = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
    if annotations:
        args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        args += [a for a in (node.args.vararg, node.args.kwarg) if a is not None]
        exprs += [a.annotation for a in args if a.annotation is not None]
        if node.returns is not None:
            exprs.append(node.returns)
    names: dict[str, None] = {}
    for expr in exprs:
        for sub in ast.walk(expr):
            if isinstance(sub, ast.Name):
                names[sub.id] = None
    return list(names)


def _imported_locally(value: Any, stmt: ast.Import | ast.ImportFrom, directory: Path) -> bool:
    """Whether an import-bound value comes from a module next to the file (or a relative import)."""
    if isinstance(stmt, ast.ImportFrom) and stmt.level > 0:
        return True
    if isinstance(value, types.ModuleType):
        return _is_local(getattr(value, "__file__", None), directory)
    if isinstance(stmt, ast.ImportFrom) and stmt.module:
        mod = sys.modules.get(stmt.module)
        return _is_local(getattr(mod, "__file__", None), directory)
    return False


def plan_function(source: SourceFile, fn: FoundFunction) -> Plan:
    """Decide source or cloudpickle for one function, with the reason in words."""
    module = source.module
    by_value = (module, *source.local_modules)
    obj, node = fn.obj, fn.node

    def pickle(reason: str) -> Plan:
        return Plan(CLOUDPICKLE, reason, by_value=by_value)

    if node is not None and node.decorator_list:
        return pickle(f"{fn.name} is decorated")
    if inspect.isfunction(obj) and obj.__closure__:
        return pickle(f"{fn.name} is a closure over {', '.join(obj.__code__.co_freevars)}")
    if node is None:
        return pickle(f"{fn.name} is not defined by a def statement")
    if not inspect.isfunction(obj):
        return pickle(f"{fn.name} is a {type(obj).__name__}, not a plain function")
    if obj.__code__.co_name != node.name or obj.__module__ != module.__name__:
        return pickle(f"{fn.name} is bound to another function ({obj.__qualname__})")
    future = _future_imports(source.tree)
    lazy_annotations = "from __future__ import annotations" in future
    names = [*global_names(obj.__code__), *_def_time_names(node, annotations=not lazy_annotations)]
    imports = _import_bindings(source.tree)
    directory = source.path.resolve().parent
    needed: dict[str, None] = {}
    for name in dict.fromkeys(names):
        if name == node.name:
            continue  # recursion: the def binds its own name
        if name in imports:
            value = module.__dict__.get(name)
            if not any(_imported_locally(value, stmt, directory) for stmt in imports[name]):
                needed.update((ast.unparse(stmt), None) for stmt in imports[name])
                continue
            return pickle(f"{fn.name} uses {name!r}, imported from a module next to the file")
        if name in module.__dict__:
            value = module.__dict__[name]
            kind = ("function" if inspect.isfunction(value) else "class" if inspect.isclass(value)
                    else "module" if inspect.ismodule(value) else "constant")
            return pickle(f"{fn.name} uses the module-level {kind} {name!r}")
        # Otherwise a builtin, or a name defined nowhere (a NameError at call time either way).
    reason = "uses only its file's imports and builtins" if needed else "stands alone"
    return Plan(SOURCE, f"{fn.name} {reason}", imports=(*future, *needed))
