"Outputs are part of the docs: notebooks show their results before anything runs, and stay small."
import ast, json, re, shutil, subprocess, sys, tempfile
from pathlib import Path
import pytest
from inoculate.outputs import lesson_notebooks, recorded_parameters
from inoculate.presets import cache_dir, figure_notebook, figure_slugs, repo_root

FIGURE_NBS = [figure_notebook(s) for s in figure_slugs()]
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


def tags(cell): return cell.get('metadata', {}).get('tags', [])


@pytest.mark.parametrize('nb', FIGURE_NBS, ids=lambda p: p.stem)
def test_recorded_parameters_are_those_of_the_outputs_and_the_figure(nb):
    "The committed notebook records the parameters it ran with in a note no run executes; they name the preset its outputs and its figure's provenance name."
    assert not [c for c in cells(nb) if 'injected-parameters' in tags(c)], "no injected cell: it would override the parameters cell"
    assert [c['cell_type'] for c in cells(nb) if 'made-with' in tags(c)] == ['markdown'], "one note of what the outputs were made with"
    preset = recorded_parameters(json.loads(Path(nb).read_text())).get('preset')
    assert preset, "the note records the preset"
    assert any(f"preset {preset} " in text(o.get('text', '')) for o in outputs(nb)), "the outputs name the same preset"
    caption = (repo_root()/'figures'/f'{Path(nb).stem}.md').read_text()
    assert f"| preset | {preset} |" in caption, "the committed figure was made with the same preset"


def assigned_names(source:str) -> set:
    "Names a cell's top-level statements assign."
    tree = ast.parse('\n'.join(l for l in source.splitlines() if not l.lstrip().startswith(('%', '!'))))
    return {n.id for a in tree.body if isinstance(a, (ast.Assign, ast.AnnAssign, ast.AugAssign))
            for t in (a.targets if isinstance(a, ast.Assign) else [a.target]) for n in ast.walk(t) if isinstance(n, ast.Name)}


@pytest.mark.parametrize('nb', FIGURE_NBS, ids=lambda p: p.stem)
def test_only_the_parameters_cell_sets_the_preset(nb):
    "A reader who edits `preset` in the parameters cell and runs all runs that preset: no other cell sets it."
    setting = [c.get('id') for c in cells(nb) if c['cell_type'] == 'code' and 'preset' in assigned_names(text(c['source']))]
    assert setting == [next(c['id'] for c in cells(nb) if 'parameters' in tags(c))], setting


MACHINE_PATH = re.compile(r'(?<![\w.~$])/(?:tmp|home|Users|work|root|private|var/folders|mnt|scratch)/')  # where a clone, a home or a temporary folder lives


def machine_paths(nb) -> list[str]:
    "Absolute paths of this machine in the text outputs of a notebook (images left out): each with a little context."
    here = {str(p) for p in (repo_root(), Path.home(), cache_dir(), Path(tempfile.gettempdir())) if len(str(p)) > 1}
    found = []
    for o in outputs(nb):
        for t in [o.get('text', ''), *(v for k, v in o.get('data', {}).items() if k.startswith('text/'))]:
            t = text(t)
            found += [t[max(0, m.start() - 40):m.end() + 40] for m in MACHINE_PATH.finditer(t)]
            found += [f"{p} (this machine's)" for p in here if re.search(rf'(?<![\w$]){re.escape(p)}(?![\w.-])', t)]
    return found


@pytest.mark.parametrize('nb', [*lesson_notebooks(), *FIGURE_NBS], ids=lambda p: str(p.relative_to(repo_root()/'nbs')))
def test_no_absolute_path_in_committed_outputs(nb):
    "A committed notebook names no one's clone, home, cache or temporary folder: `shown_path` and `shown_text` (00_presets) show them."
    assert not machine_paths(nb), machine_paths(nb)


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
