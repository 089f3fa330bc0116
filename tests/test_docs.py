"Every public function with more than two parameters documents each of them inline (fastcore docments), as the notebooks teach."
import importlib, inspect
import unsloth  # noqa: F401
import pytest
from fastcore.docments import docments
from test_architecture import ORDER


def undocumented(module:str) -> list[str]:
    "`function: parameters` of `module`'s public functions and methods (more than two parameters) that lack a comment."
    mod, out = importlib.import_module(f'inoculate.{module}'), []
    for name in getattr(mod, '__all__', []):
        obj = getattr(mod, name)
        if inspect.isfunction(obj) and obj.__module__ == mod.__name__: fns = [(name, obj)]
        elif inspect.isclass(obj) and obj.__module__ == mod.__name__:
            fns = [(f"{name}.{k}", v) for k, v in vars(obj).items() if inspect.isfunction(v) and (not k.startswith('_') or k == '__init__')]
        else: fns = []
        for fname, f in fns:
            params = [p.name for p in inspect.signature(f).parameters.values()
                      if p.name != 'self' and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            if len(params) <= 2: continue
            try: docs = docments(f)
            except OSError: continue  # generated (a dataclass's __init__): its fields carry the comments
            if (lacking := [p for p in params if not docs.get(p)]): out.append(f"{fname}: {', '.join(lacking)}")
    return out


@pytest.mark.parametrize('module', ORDER)
def test_parameters_are_documented(module):
    assert undocumented(module) == []
