"Outputs are part of the docs: notebooks show their results before anything runs, and stay small."
import json, shutil, subprocess, sys
from pathlib import Path
import pytest
from inoculate.outputs import lesson_notebooks
from inoculate.presets import repo_root

FIGURE_NBS = sorted((repo_root()/'nbs'/'figures').glob('*.ipynb'))
MAX_LESSON_BYTES, MAX_FIGURE_BYTES = 200_000, 300_000


def cells(path): return json.loads(Path(path).read_text())['cells']
def outputs(path): return [o for c in cells(path) if c['cell_type'] == 'code' for o in c.get('outputs', [])]
def text(x): return ''.join(x) if isinstance(x, list) else x


@pytest.mark.parametrize('nb', FIGURE_NBS, ids=lambda p: p.stem)
def test_figure_notebook_has_a_result_computed_from_its_csv(nb):
    cs = cells(nb)
    at = [i for i, c in enumerate(cs) if c['cell_type'] == 'markdown' and text(c['source']).startswith('## Result')]
    assert len(at) == 1, "one Result section"
    code = text(cs[at[0] + 1]['source'])
    assert 'fig.table(' in code and 'fig.result(' in code, "the Result reads the saved CSV back and writes each verdict"


@pytest.mark.parametrize('nb', FIGURE_NBS, ids=lambda p: p.stem)
def test_figure_notebook_shows_its_figure_and_result(nb):
    outs = outputs(nb)
    assert any('image/png' in o.get('data', {}) for o in outs), "the figure is in the notebook"
    md = [text(o['data']['text/markdown']) for o in outs if 'text/markdown' in o.get('data', {})]
    assert any(m.startswith('Of ') and ' predictions: ' in m for m in md), "the Result section's output is in the notebook"
    assert any("preset cpu" in text(o.get('text', '')) for o in outs), "the outputs say they come from the committed preset"
    assert Path(nb).stat().st_size < MAX_FIGURE_BYTES


def injected_preset(nb) -> str|None:
    "The preset of the injected-parameters cell a committed figure notebook keeps (None if it has none)."
    cell = next((c for c in cells(nb) if 'injected-parameters' in c.get('metadata', {}).get('tags', [])), None)
    if cell is None: return None
    return next(l.split('=', 1)[1].strip().strip('"\'') for l in text(cell['source']).splitlines() if l.startswith('preset ='))


@pytest.mark.parametrize('nb', FIGURE_NBS, ids=lambda p: p.stem)
def test_recorded_parameters_are_those_of_the_outputs_and_the_figure(nb):
    "The committed notebook shows the parameters it ran with; they name the preset its outputs and its figure's provenance name."
    preset = injected_preset(nb)
    assert preset, "the injected-parameters cell is kept"
    assert text(next(c for c in cells(nb) if 'injected-parameters' in c['metadata'].get('tags', []))['source']).startswith('#| notest')
    assert any(f"preset {preset} " in text(o.get('text', '')) for o in outputs(nb)), "the outputs name the same preset"
    caption = (repo_root()/'figures'/f'{Path(nb).stem}.md').read_text()
    assert f"| preset | {preset} |" in caption, "the committed figure was made with the same preset"
    assert str(repo_root()) not in ''.join(text(o.get('text', '')) for o in outputs(nb)), "outputs name no absolute path of the clone"


@pytest.mark.parametrize('nb', lesson_notebooks(), ids=lambda p: p.stem)
def test_lesson_notebook_keeps_small_outputs(nb):
    outs = outputs(nb)
    assert outs, "the lesson's outputs are kept (make outputs)"
    assert not [o for o in outs if o.get('name') == 'stderr'], "no stderr in committed outputs"
    assert Path(nb).stat().st_size < MAX_LESSON_BYTES


def test_cleaning_and_exporting_keep_outputs(tmp_path):
    "nbdev-clean (what `make sync` runs) must not strip the outputs it is given."
    nbs = [lesson_notebooks()[0], FIGURE_NBS[0]]
    for nb in nbs: shutil.copy(nb, tmp_path/nb.name)
    r = subprocess.run([str(Path(sys.executable).parent/'nbdev-clean'), '--fname', str(tmp_path)], cwd=repo_root(),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for nb in nbs: assert outputs(tmp_path/nb.name) == outputs(nb)
