"""Finding public functions, and the source-or-cloudpickle decision, on real files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from deployer.errors import NoPublicFunctionsError, SourceFileError
from deployer.inspect_functions import (
    CLOUDPICKLE,
    SOURCE,
    SourceFile,
    find_functions,
    global_names,
    load_source_file,
    plan_function,
)

Load = Callable[..., SourceFile]


def plans(source: SourceFile) -> dict[str, str]:
    return {f.name: plan_function(source, f).serializer for f in find_functions(source)}


def test_public_functions_in_file_order_without_private_or_imported(load: Load) -> None:
    source = load("""
        import math
        from os.path import join

        def b(x): return x
        def _private(x): return x
        def a(x): return math.sqrt(x)
        class NotAFunction: pass
        square = lambda x: x * x
        """)
    assert [f.name for f in find_functions(source)] == ["b", "a", "square"]


def test_named_functions_can_be_private(load: Load) -> None:
    source = load("def a(): pass\ndef _b(): pass\n")
    assert [f.name for f in find_functions(source, ["_b"])] == ["_b"]


def test_unknown_function_name_lists_the_public_ones(load: Load) -> None:
    source = load("def a(): pass\ndef b(): pass\n")
    with pytest.raises(NoPublicFunctionsError, match=r"no function 'nope' in .*funcs.py \(public functions: a, b\)"):
        find_functions(source, ["nope"])


def test_no_public_functions_says_so_and_names_private_ones(load: Load) -> None:
    source = load("X = 1\ndef _helper(): pass\n")
    with pytest.raises(NoPublicFunctionsError, match=r"no public functions in .*funcs.py; _helper start"):
        find_functions(source)


def test_standalone_function_with_stdlib_import_is_source(load: Load) -> None:
    source = load("""
        import math
        import os.path
        from json import dumps as to_json

        def hyp(a: float, b: float) -> float:
            return math.sqrt(a * a + b * b)

        def both(x):
            return to_json([os.path.basename(x), len(x)])

        def fact(n):
            return 1 if n <= 1 else n * fact(n - 1)

        def nested(xs):
            return [math.floor(x) for x in xs if (lambda y: y > 0)(x)]
        """)
    assert plans(source) == {"hyp": SOURCE, "both": SOURCE, "fact": SOURCE, "nested": SOURCE}
    fns = {f.name: f for f in find_functions(source)}
    assert plan_function(source, fns["hyp"]).imports == ("import math",)
    assert plan_function(source, fns["both"]).imports == ("from json import dumps as to_json", "import os.path")
    assert plan_function(source, fns["fact"]).imports == ()


@pytest.mark.parametrize(("text", "why"), [
    ("def make(n):\n    def f(x): return x + n\n    return f\nadd3 = make(3)\n", "closure over n"),
    ("def _helper(x): return x * 2\ndef f(x): return _helper(x)\n", "module-level function '_helper'"),
    ("class P:\n    pass\ndef f(): return P()\n", "module-level class 'P'"),
    ("RATE = 1.8\ndef f(c): return c * RATE\n", "module-level constant 'RATE'"),
    ("import functools\n@functools.lru_cache\ndef f(x): return x\n", "f is decorated"),
    ("LIMIT = 3\ndef f(x=LIMIT): return x\n", "module-level constant 'LIMIT'"),
    ("class P: pass\ndef f(p: P): return p\n", "module-level class 'P'"),
    ("counter = 0\ndef f():\n    global counter\n    counter += 1\n    return counter\n", "'counter'"),
    ("square = lambda x: x * x\n", "not defined by a def"),
])
def test_functions_needing_more_than_their_source_are_cloudpickled(load: Load, text: str, why: str) -> None:
    source = load(text)
    found = find_functions(source)[-1]
    plan = plan_function(source, found)
    assert plan.serializer == CLOUDPICKLE
    assert why in plan.reason
    assert source.module in plan.by_value


def test_every_import_binding_a_used_name_is_kept(load: Load) -> None:
    source = load("import xml\nimport json\nimport xml.etree.ElementTree\n\n"
                  "def tag(text):\n    return xml.etree.ElementTree.fromstring(text).tag\n")
    plan = plan_function(source, find_functions(source)[0])
    assert plan.serializer == SOURCE
    assert plan.imports == ("import xml", "import xml.etree.ElementTree")


def test_lazy_annotations_do_not_force_cloudpickle(load: Load) -> None:
    source = load("""
        from __future__ import annotations

        class P: pass

        def f(p: P) -> P:
            return p
        """)
    plan = plan_function(source, find_functions(source)[0])
    assert plan.serializer == SOURCE
    assert plan.imports == ("from __future__ import annotations",)


def test_module_next_to_the_file_is_pickled_by_value(load: Load, write_file: Callable[..., Path]) -> None:
    write_file("def double(x):\n    return 2 * x\n", "sibling_helpers.py")
    source = load("import sibling_helpers\n\ndef f(x):\n    return sibling_helpers.double(x)\n")
    plan = plan_function(source, find_functions(source)[0])
    assert plan.serializer == CLOUDPICKLE
    assert "next to the file" in plan.reason
    assert [m.__name__ for m in plan.by_value] == [source.module.__name__, "sibling_helpers"]


def test_global_names_ignore_attributes_and_locals() -> None:
    def f(x):  # noqa: ANN001 - a fixture function
        y = len(x)
        return math.floor(y).real  # type: ignore[name-defined] # noqa: F821

    assert global_names(f.__code__) == ["len", "math"]


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceFileError, match="no such file: .*missing.py"):
        load_source_file(tmp_path / "missing.py")


def test_a_file_that_is_not_python_source_is_a_clear_error(write_file: Callable[..., Path]) -> None:
    # Valid Python in a .txt file: importlib has no loader for that name (this was an AssertionError).
    path = write_file("def f(x):\n    return x\n", "funcs.txt")
    with pytest.raises(SourceFileError, match=r"^not a Python file: .*funcs.txt \(functions are deployed from a FILE.py\)$"):
        load_source_file(path)
    with pytest.raises(SourceFileError, match="^not a file: "):
        load_source_file(path.parent)


def test_syntax_error_names_file_line_and_caret(write_file: Callable[..., Path]) -> None:
    path = write_file("import math\n\ndef convert(celsius)\n    return celsius\n", "broken.py")
    with pytest.raises(SourceFileError) as info:
        load_source_file(path)
    message = str(info.value)
    assert f"syntax error in {path}, line 3" in message
    assert "def convert(celsius)" in message
    lines = message.splitlines()
    code_line = next(i for i, line in enumerate(lines) if "def convert(celsius)" in line)
    assert lines[code_line + 1].strip() == "^"
    assert lines[code_line + 1].index("^") == lines[code_line].index(")") + 1
    assert "SyntaxError: expected ':'" in message


def test_failing_import_shows_the_traceback(write_file: Callable[..., Path]) -> None:
    path = write_file("import no_such_module_here\n\ndef f(): pass\n", "bad_import.py")
    with pytest.raises(SourceFileError, match=r"(?s)importing .*bad_import.py failed:.*No module named 'no_such_module_here'"):
        load_source_file(path)
