"Committed figures are traceable to a commit and readable: clean captions, widths within the limit."
import contextlib, io, json, struct, subprocess
from pathlib import Path
import pytest
import vl_convert as vlc
import inoculate.plots as plots
from inoculate import cli
from inoculate.presets import repo_root

FIGURES = sorted([*(repo_root()/'figures').glob('*.vl.json'), *(repo_root()/'figures'/'cpu-llm').glob('*.vl.json')])  # the cpu-llm preset's too
MAX_PNG_WIDTH = 2000  # px, at the scale the committed PNGs are written (2)


def png_size(png:bytes) -> tuple[int, int]:
    return struct.unpack('>II', png[16:24])


def test_there_are_committed_figures():
    assert len(FIGURES) >= 9


@pytest.mark.parametrize('spec', FIGURES, ids=lambda p: str(p.relative_to(repo_root()/'figures')))
def test_committed_figure_renders_within_width(spec):
    w, h = png_size(vlc.vegalite_to_png(json.loads(spec.read_text()), scale=2))
    assert w <= MAX_PNG_WIDTH, f"{spec.name}: {w} x {h} px (a wide figure is shrunk to the page; a tall one scrolls)"
    assert png_size((spec.parent/spec.name.replace('.vl.json', '.png')).read_bytes()) == (w, h), "the PNG is not drawn from this spec"


@pytest.mark.parametrize('caption', sorted([*(repo_root()/'figures').glob('*.md'), *(repo_root()/'figures'/'cpu-llm').glob('*.md')]), ids=lambda p: str(p.relative_to(repo_root()/'figures')))
def test_committed_caption_is_from_a_clean_commit(caption):
    git = [l for l in caption.read_text().splitlines() if l.startswith('| git |')]
    assert git and '-dirty' not in git[0] and 'unknown' not in git[0], git


@pytest.fixture
def repo(tmp_path, monkeypatch):
    "A throwaway git repository that `inoculate.plots` takes for the project."
    git = lambda *a: subprocess.run(['git', '-c', 'user.name=t', '-c', 'user.email=t@t', *a], cwd=tmp_path, check=True, capture_output=True)
    (tmp_path/'figures').mkdir(); (tmp_path/'code.py').write_text('x = 1\n'); (tmp_path/'figures'/'f.md').write_text('old\n')
    (tmp_path/'fig.ipynb').write_text(json.dumps(notebook('x = 1', [])))
    git('init', '-q'); git('add', '.'); git('commit', '-qm', 'start')
    monkeypatch.setattr(plots, 'repo_root', lambda: tmp_path)
    return tmp_path


def notebook(source:str, outputs:list) -> dict:
    return dict(cells=[dict(cell_type='code', source=[source], outputs=outputs, metadata={}, execution_count=None)],
                metadata={}, nbformat=4, nbformat_minor=5)


def test_git_state_ignores_a_notebooks_new_outputs_not_its_code(repo):
    sha = plots.git_state()[0]
    (repo/'fig.ipynb').write_text(json.dumps(notebook('x = 1', [dict(output_type='stream', name='stdout', text='1')])))
    assert plots.git_state() == (sha, None), "a figure notebook that kept its run's outputs is not a code change"
    (repo/'fig.ipynb').write_text(json.dumps(notebook('x = 2', [])))
    assert plots.git_state()[1] is not None


def test_git_state_sees_code_changes_but_not_figures(repo):
    sha, changes = plots.git_state()
    assert changes is None and plots.git_sha() == sha
    (repo/'figures'/'f.md').write_text('new figure\n')  # writing figures does not make the tree dirty
    assert plots.git_state() == (sha, None)
    (repo/'code.py').write_text('x = 2\n')
    one = plots.git_state()[1]
    (repo/'code.py').write_text('x = 3\n')
    two = plots.git_state()[1]
    assert one and two and one != two, "the hash names the changes"
    (repo/'code.py').write_text('x = 1\n'); (repo/'notes.txt').write_text('mine\n')  # a stray file at the root does not count
    assert plots.git_state() == (sha, None)
    (repo/'inoculate').mkdir(exist_ok=True); (repo/'inoculate'/'new.py').write_text('y = 1\n')  # a new file in the package does
    assert plots.git_state()[1] is not None and plots.git_sha().startswith(f"{sha}-dirty-")


def test_reproduce_refuses_a_dirty_tree(repo):
    (repo/'code.py').write_text('x = 2\n')
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert cli.main(['reproduce', '--preset', 'cpu']) == 2
    assert 'Commit first' in err.getvalue() and '--allow-dirty' in err.getvalue()
    assert cli.dirty_refusal('cpu', allow_dirty=True) is None
