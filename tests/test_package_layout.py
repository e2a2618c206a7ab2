"""The package's layering: no import cycle, models below analysis, every module importable on
its own, no toolkit import hidden inside a function to dodge a cycle, and nothing of tools/ (the
demo's and the GPU check's libraries live there) imported by the package."""
import ast
import os
import os.path as osp
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import REPO, tool_env

PACKAGE = osp.join(REPO, 'backbones')
TOOLS = osp.join(REPO, 'tools')
#: Layers that must not import the ones named (models know nothing of analysis).
#: Checkpoint files sit below the models, the models below the engine (whose hooks check that
#: a checkpoint fits a model).
FORBIDDEN = {
    'backbones.checkpoint': ('backbones.analysis', 'backbones.datasets', 'backbones.engine',
                             'backbones.models'),
    'backbones.models': ('backbones.analysis', 'backbones.engine'),
    'backbones.datasets': ('backbones.analysis', 'backbones.models'),
    'backbones.engine': ('backbones.analysis', ),
}


def modules():
    """Dotted name -> file of every module of the package."""
    found = {}
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith('.py'):
                path = osp.join(root, name)
                dotted = osp.relpath(path, REPO)[:-3].replace(os.sep, '.')
                found[dotted[:-len('.__init__')] if dotted.endswith('.__init__') else dotted] = path
    return found


def _resolve(module, node, is_package):
    """The toolkit modules an import statement of ``module`` names."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith('backbones')]
    if node.level:
        base = module.split('.')
        base = base[:len(base) - node.level + (1 if is_package else 0)]
        target = '.'.join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ''
    if not target.startswith('backbones'):
        return []
    # `from pkg import name` may name a submodule.
    return [target] + [f'{target}.{a.name}' for a in node.names]


def import_graph():
    """(module -> imported toolkit modules at module level, function-level imports)."""
    mods = modules()
    graph, nested = {}, []
    for module, path in mods.items():
        tree = ast.parse(open(path).read(), path)
        is_package = path.endswith('__init__.py')
        edges = set()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            targets = [t for t in _resolve(module, node, is_package) if t in mods]
            if node.col_offset == 0:
                edges.update(targets)
            elif targets:
                nested.append(f'{module}:{node.lineno} imports {targets[0]}')
        graph[module] = edges - {module}
    return graph, nested


def _parent_packages(module):
    # Sub-packages only: everything is imported through the root package's __init__, which
    # Python lets its submodules re-enter while it is still running.
    parts = module.split('.')
    return ['.'.join(parts[:i]) for i in range(2, len(parts))]


def test_no_import_cycle():
    graph, _ = import_graph()
    # Importing a module first runs its parent packages' __init__, so they count as imported.
    full = {m: set(e) | {p for t in e for p in _parent_packages(t)} - {m} - set(
        _parent_packages(m)) for m, e in graph.items()}
    state, stack = {}, []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(full[node]):
            if state.get(nxt) == 'open':
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError('import cycle: ' + ' -> '.join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 'done'

    for node in sorted(full):
        if node not in state:
            visit(node)


def test_layers_import_downwards_only():
    graph, _ = import_graph()
    wrong = [f'{m} imports {t}' for m, targets in graph.items() for t in targets
             for layer, banned in FORBIDDEN.items()
             if (m == layer or m.startswith(layer + '.')) and t.startswith(banned)]
    assert not wrong, wrong


def tool_module_names():
    """What a script under tools/ makes importable by putting its own folder on sys.path (as
    tools/demo.py and tools/gpu/*.py do): the modules and folders of every folder of tools/
    (a package such as demo_lib/ by its name only), standard-library module names left out."""
    names = {'tools'}
    for root, dirs, files in os.walk(TOOLS):
        if '__init__.py' in files:
            dirs[:] = []
            continue
        dirs[:] = [d for d in dirs if d != '__pycache__']
        names.update(osp.splitext(f)[0] for f in files if f.endswith('.py'))
        names.update(dirs)
    return names - set(sys.stdlib_module_names)


def test_package_imports_nothing_of_tools():
    tools = tool_module_names()
    assert {'demo_lib', 'gpu_lib', 'peer_probe'} <= tools
    wrong = []
    for module, path in modules().items():
        for node in ast.walk(ast.parse(open(path).read(), path)):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or '']
            else:
                continue
            wrong += [f'{module}:{node.lineno} imports {n}' for n in names
                      if n.split('.')[0] in tools]
    assert not wrong, wrong


def test_no_toolkit_import_inside_functions():
    _, nested = import_graph()
    assert not nested, nested


def test_no_lazy_module_getattr():
    for module, path in modules().items():
        tree = ast.parse(open(path).read(), path)
        assert not any(isinstance(n, ast.FunctionDef) and n.name == '__getattr__'
                       for n in tree.body), module


_LIST_LOADED = 'import sys; print(*(m for m in sys.modules if m.startswith("backbones")))'


def _import_alone(module):
    """(module, return code, end of stderr, toolkit modules loaded) of ``import module`` in a
    fresh interpreter."""
    proc = subprocess.run([sys.executable, '-c', f'import {module}; {_LIST_LOADED}'], cwd=REPO,
                          env=tool_env(), capture_output=True, text=True, timeout=300)
    return module, proc.returncode, proc.stderr[-1500:], set(proc.stdout.split())


@pytest.mark.slow
def test_every_module_imports_alone_in_a_fresh_interpreter():
    """Each module imported first in a fresh interpreter, where a cycle would show. Python
    imports a module's packages before it, so a module that a fresh import of its package
    already loads has the very same import sequence and needs no interpreter of its own."""
    names = sorted(modules())
    loaded_by = {}  # module -> what a fresh import of it loads
    runs, failed = [], []
    for depth in range(max(n.count('.') for n in names) + 1):
        todo = []
        for name in (n for n in names if n.count('.') == depth):
            parent = name.rpartition('.')[0]
            if parent and name in loaded_by[parent]:
                loaded_by[name] = loaded_by[parent]
            else:
                todo.append(name)
        with ThreadPoolExecutor(max_workers=2) as pool:
            for module, rc, err, loaded in pool.map(_import_alone, todo):
                runs.append(module)
                loaded_by[module] = loaded
                if rc != 0 or module not in loaded:
                    failed.append(f'{module} (exit {rc}):\n{err}')
    assert not failed, '\n'.join(failed)
    assert set(loaded_by) == set(names)
    assert runs[0] == 'backbones' and len(runs) < len(names), runs
