"Structure every figure notebook shares: the one install cell, and a papermill `parameters` cell with the scaffold's parameters."
import json
import pytest
from inoculate.cli import figure_slugs
from inoculate.colab import INSTALL_CELL
from inoculate.presets import repo_root

NOTEBOOKS = [f'figures/{s}' for s in figure_slugs()] + ['index']


def code_cells(name):
    cells = json.loads((repo_root()/'nbs'/f'{name}.ipynb').read_text())['cells']
    return [c for c in cells if c['cell_type'] == 'code']


@pytest.mark.parametrize('name', NOTEBOOKS)
def test_install_cell_is_the_shared_one(name):
    cells = code_cells(name)
    installs = [c for c in cells if 'google.colab' in ''.join(c['source'])]
    assert [''.join(c['source']) for c in installs] == [INSTALL_CELL]
    assert cells[0] is installs[0] or name == 'index'


@pytest.mark.parametrize('slug', figure_slugs())
def test_parameters_cell_has_the_scaffold_parameters(slug):
    params = [''.join(c['source']) for c in code_cells(f'figures/{slug}') if 'parameters' in c.get('metadata', {}).get('tags', [])]
    assert len(params) == 1
    for name in ('preset', 'seeds', 'max_hours', 'runs_dir', 'out_dir', 'executor', 'data_dir'):
        assert f'\n{name} = ' in '\n' + params[0], name
