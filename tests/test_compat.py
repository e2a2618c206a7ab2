"""transformers 5 beside mmpretrain: ``import backbones`` and mmpretrain's models import."""
import subprocess
import sys

import pytest


def test_import_with_transformers5_and_mmpretrain():
    transformers = pytest.importorskip('transformers')
    assert int(transformers.__version__.split('.')[0]) >= 5, (
        f'the test environment pins transformers 5 (requirements/tests.txt); found '
        f'{transformers.__version__}')
    # A fresh interpreter: the clash happens at first import, which this process is past.
    code = ('import backbones, mmdet.models, mmpretrain.models\n'
            'from mmpretrain.models import ConvNeXt\n'
            'from mmpretrain.utils.dependency import WITH_MULTIMODAL\n'
            'print(WITH_MULTIMODAL, ConvNeXt.__name__)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ['False', 'ConvNeXt']
