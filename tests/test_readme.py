"The README (made from nbs/index.ipynb by `make readme`) says what the code does: its generated tables are the code's own."
from inoculate.outputs import costs_markdown
from inoculate.presets import repo_root

README = (repo_root()/'README.md').read_text()


def test_readme_cost_table_is_the_figures_plans():
    "Each figure's runs, hours and judge calls on colab-t4, as its own notebook plans them (`plan_figure`), and their total."
    assert costs_markdown().strip() in README, "README.md's cost table differs from the figures' plans: run `make readme`"


def test_readme_durations_are_measured():
    "The first-run durations are measured on a quiet machine and written in, not left as placeholders."
    assert '{{measured by the integrator}}' not in README, "fill in the measured durations of make test and make reproduce"


def test_readme_names_the_first_run_path_and_the_presets_variable():
    first = README.index('## First run')
    assert first < README.index('## The figures') and first < README.index('## Use it'), "the first run comes first"
    for step in ('git clone', 'python3-venv', 'make test', 'make reproduce', 'source .venv/bin/activate', 'jupyter lab'):
        assert step in README[first:README.index('## Start here')], step
    assert 'INOCULATE_SETTINGS' in README and 'ALLOW_DIRTY=1' in README
