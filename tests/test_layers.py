"""The package's plan, checked from its import graph: layers import only downwards and nothing in a circle."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "speech_s2s"
README = PACKAGE.parent / "README.md"

# Each folder (or top-level module) and its floor: a module may import modules of its own floor or lower.
# The leaves at the top are below everything; the user-facing front is above the layers it uses.
FLOORS = {
    "text": 0, "atomic": 0, "errors": 0, "configs": 0, "machine": 0,
    "frontend": 1,
    "model": 2,
    "decoding": 3,
    "data": 3,  # corpora and batches: over the frontend, never the model or the search
    "training": 4, "evaluation": 4,
    "punctuation": 4,  # text after decoding: the restorer reads normalisation (data) and plots (training)
    "input_files": 5, "transcribe": 5, "streaming": 6, "sources": 5, "writers": 6, "builder": 6, "__init__": 7,
    "serve": 7,  # the network over live recognition
    "cluster": 7,  # transcribe on a Ray cluster: over the builder and the pipeline, under the CLI
    "cli": 8,
}


def _modules() -> dict[str, Path]:
    return {".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts): path for path in PACKAGE.rglob("*.py")}


def _part(module: str) -> str:
    """The folder or top-level module a dotted module name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("speech_s2s"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("speech_s2s"))
    return {name for name in found if name in modules and not name.endswith("__init__")} - {"speech_s2s"}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    names = set(modules) | {name.removesuffix(".__init__") for name in modules}
    return {name.removesuffix(".__init__"): _imports(path, names) for name, path in modules.items()}


def test_every_module_has_a_floor_and_imports_none_above_it():
    graph = _graph()
    assert {_part(name) for name in graph} <= set(FLOORS), set(map(_part, graph)) - set(FLOORS)
    upward = [f"{name} -> {target}" for name, targets in graph.items() for target in targets
              if FLOORS[_part(target)] > FLOORS[_part(name)]]
    assert not upward, "imports from a higher layer:\n" + "\n".join(sorted(upward))


def test_no_import_circle():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                return path + [name, target]
            if target not in state:
                cycle = visit(target, path + [name])
                if cycle:
                    return cycle
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state:
            cycle = visit(name, [])
            assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_checks_find_a_circle_and_an_upward_import():
    """The two checks above must be able to fail: a model module importing the CLI is both."""
    graph = _graph()
    graph["speech_s2s.model.encoder"] = graph["speech_s2s.model.encoder"] | {"speech_s2s.cli.main"}
    assert FLOORS[_part("speech_s2s.cli.main")] > FLOORS[_part("speech_s2s.model.encoder")]
    reachable, frontier = set(), ["speech_s2s.cli.main"]
    while frontier:
        name = frontier.pop()
        for target in graph.get(name, ()):
            if target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert "speech_s2s.model.encoder" in reachable  # the CLI reaches the encoder: with the edge above, a circle


def test_the_package_top_is_small_and_the_readme_maps_every_module():
    top = sorted(path.stem for path in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top
    readme = README.read_text(encoding="utf-8")
    # named as `folder/module` (or `module` at the top), as the map's table writes them
    missing = [name for name in _modules() if not name.endswith(("__init__", "__main__"))
               and f"`{'/'.join(name.split('.')[1:])}`" not in readme]
    assert not missing, f"modules the README's map does not name: {missing}"
