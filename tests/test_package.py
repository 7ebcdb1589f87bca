"""The package's modules among themselves: no module reaches into another's private names, no import cycle.

What two modules share is public (in ``__all__``, with a docstring); a name
starting with ``_`` may change without notice, so importing it from another
module couples the two silently.  Read from the source (nothing is imported),
so the check is quick and needs no TensorFlow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from esc_lib import config

PACKAGE = config.PROJECT_ROOT / "esc_lib"
MODULES = sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level(tree: ast.Module) -> list[ast.AST]:
    """The statements run on import: not those in functions, classes or ``if TYPE_CHECKING:`` blocks."""
    nodes, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        nodes.append(node)
        if isinstance(node, ast.If):
            test = node.test
            if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                    isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
                todo += node.orelse
                continue
            todo += node.body + node.orelse
        elif isinstance(node, ast.Try):
            todo += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
        elif isinstance(node, ast.With):
            todo += node.body
    return nodes


def _imports(path: Path, on_import_only: bool = False) -> list[tuple[ast.AST, str, list[str]]]:
    """``(node, module, names)`` for the imports of esc_lib modules in ``path`` (relative ones resolved).

    Every one, or with ``on_import_only`` those that run when the module is
    imported (a function's own import, run when it is called, breaks no cycle).
    """
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in (_module_level(tree) if on_import_only else ast.walk(tree)):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            if module == "esc_lib" or module.startswith("esc_lib."):
                found.append((node, module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node, alias.name, []) for alias in node.names if alias.name.startswith("esc_lib.")]
    return found


def _is_module(dotted: str) -> bool:
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_module_uses_another_modules_private_names(path):
    me = _module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases = {}  # local name -> the esc_lib module it stands for
    offences = []
    for node, module, names in _imports(path):
        if isinstance(node, ast.Import):
            aliases.update({alias.asname or alias.name: alias.name for alias in node.names
                            if alias.name.startswith("esc_lib.")})
            continue
        for alias in node.names:
            if _is_module(f"{module}.{alias.name}"):
                aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
            elif alias.name.startswith("_") and module != me:
                offences.append(f"line {node.lineno}: from {module} import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in aliases and aliases[owner.id] != me:
                offences.append(f"line {node.lineno}: {owner.id}.{node.attr}")
    assert not offences, f"{me} uses private names of other modules (make them public there): {offences}"


def _graph() -> dict[str, set[str]]:
    """Module -> the esc_lib modules it imports when it is imported; a subpackage counts as one node."""
    def node(dotted: str) -> str:
        parts = dotted.split(".")
        return ".".join(parts[:2])  # esc_lib.methods.fixmatch -> esc_lib.methods

    graph: dict[str, set[str]] = {}
    for path in MODULES:
        me = node(_module_name(path))
        targets = graph.setdefault(me, set())
        for _, module, names in _imports(path, on_import_only=True):
            for name in names or [""]:
                target = f"{module}.{name}" if name and _is_module(f"{module}.{name}") else module
                if target != "esc_lib":
                    targets.add(node(target))
        targets.discard(me)
    return graph


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError(f"import cycle: {' -> '.join(path[path.index(module):] + [module])}")
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, path + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    # Statistics stand alone (no file, no other module, not even in a function: tests/test_stats.py).
    assert graph["esc_lib.stats"] == set()
    assert graph["esc_lib.tables"] <= {"esc_lib.stats", "esc_lib.atomic", "esc_lib.config"}


def test_the_package_docstring_and_the_readme_name_every_module():
    """A newcomer finds every module, with its one line, in ``esc_lib/__init__``'s docstring and in the README's tree."""
    import esc_lib

    documented = esc_lib.__doc__
    readme = (config.PROJECT_ROOT / "README.md").read_text()
    for path in MODULES:
        name = _module_name(path)
        if name == "esc_lib":
            continue
        assert f":mod:`{name}`" in documented, f"{name} is missing from esc_lib/__init__.py's docstring"
        short = name.removeprefix("esc_lib.")
        assert short.split(".")[-1] in readme.split("\n## ")[0], f"{short} is missing from the README's tree"
