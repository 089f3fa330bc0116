import os
import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')


def pytest_collection_modifyitems(config, items):
    "Skip `slow` tests unless INOCULATE_SLOW=1, and `gpu` tests without CUDA."
    slow = os.environ.get('INOCULATE_SLOW') == '1'
    try:
        import torch
        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    for item in items:
        if 'slow' in item.keywords and not slow:
            item.add_marker(pytest.mark.skip(reason='slow: set INOCULATE_SLOW=1'))
        if 'gpu' in item.keywords and not cuda:
            item.add_marker(pytest.mark.skip(reason='needs a CUDA GPU'))
