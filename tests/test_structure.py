"""The library's shape: config that loads without torch, no import cycle, small modules and classes."""

import ast
import subprocess
import sys
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib" / "relalign"
MODULES = {p.stem: p for p in LIB.glob("*.py")}


def _imports(path: Path) -> set[str]:
    """The relalign modules a module imports, at its top or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                out |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
            elif node.module and node.module.startswith("relalign."):
                out.add(node.module.split(".")[1])
    return out & set(MODULES)


def test_no_import_cycle():
    graph = {m: _imports(p) for m, p in MODULES.items()}
    done, on_path = set(), []

    def visit(m):
        assert m not in on_path, "import cycle: " + " -> ".join(on_path[on_path.index(m):] + [m])
        if m in done:
            return
        on_path.append(m)
        for d in sorted(graph[m]):
            visit(d)
        on_path.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)


def test_params_load_without_torch():
    code = ("import sys, relalign.params as p; p.load_params('params/default.yaml'); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=LIB.parents[1], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_modules_and_classes_stay_small():
    for name, path in MODULES.items():
        text = path.read_text()
        assert text.count("\n") <= 360, f"{name}.py has {text.count(chr(10))} lines"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno - node.lineno < 160, f"class {name}.{node.name} has {node.end_lineno - node.lineno + 1} lines"
