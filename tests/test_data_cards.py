"Every data card is a Hugging Face dataset card: its YAML metadata parses and holds the fields the Hub indexes."
from pathlib import Path
import pytest
from huggingface_hub import DatasetCard
from inoculate.data import SETTING_MODULES
from inoculate.presets import repo_root

CARDS = sorted((repo_root()/'data_cards').glob('*.md'))
FIELDS = ('license', 'language', 'task_categories', 'size_categories', 'source_datasets', 'pretty_name')


@pytest.mark.parametrize('card', CARDS, ids=lambda p: p.name)
def test_card_metadata_parses(card):
    data = DatasetCard.load(card).data.to_dict()
    assert data, f"{card.name}: no metadata block"
    assert [f for f in FIELDS if not data.get(f)] == []
    assert all(s in ('n<1K', '1K<n<10K', '10K<n<100K', '100K<n<1M') for s in data['size_categories'])


def test_every_setting_family_has_a_card():
    names = {c.stem for c in CARDS}
    assert len(CARDS) >= 5 and 'gcd-sycophancy' in names
    text = ' '.join(c.read_text() for c in CARDS)
    missing = [s for s in SETTING_MODULES if f'`{s}`' not in text]
    assert missing == [], f"settings without a card: {missing}"
