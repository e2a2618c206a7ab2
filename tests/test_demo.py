"""`make demo` runs its real stages; a reduced run (a few iterations) checks the code path."""
import csv

import pytest
from conftest import run_tool

STAGES = ('pretrain_convnext_atto', 'cascade_convnext_atto_pretrained',
          'upernet_convnext_atto_pretrained', 'mask_rcnn_convnext_atto_pretrained',
          'mask_rcnn_convnext_atto_scratch')


@pytest.mark.slow
def test_reduced_demo_builds_the_matrix_and_reuses_stages(tmp_path):
    work = tmp_path / 'demo'
    args = ['tools/demo.py', '--work-dir', str(work), '--data', str(tmp_path / 'shapes'),
            '--reduced']
    first = run_tool(args, timeout=1200).stdout
    assert '[demo] data: written to' in first
    for key in STAGES:
        assert f'[demo] {key}: done in' in first
    # The matrix: one row per stage, with the metric of its task, in three formats.
    with open(work / 'matrix.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['model'] for r in rows] == [
        'ConvNeXt-atto classifier (shapes pre-training)',
        'Cascade Mask R-CNN, ConvNeXt-atto, pre-trained', 'UperNet, ConvNeXt-atto, pre-trained',
        'Mask R-CNN, ConvNeXt-atto, pre-trained', 'Mask R-CNN, ConvNeXt-atto, from scratch']
    assert rows[0]['top1'] and not rows[0]['box_ap']
    assert rows[1]['box_ap'] and rows[1]['mask_ap'] and not rows[1]['miou']
    assert rows[2]['miou'] and not rows[2]['box_ap']
    assert all(float(r['params_m']) > 0 and float(r['train_time_s']) > 0 for r in rows)
    markdown = (work / 'matrix.md').read_text()
    assert sum(line.startswith('| ') for line in markdown.splitlines()) == 6  # header + 5
    assert 'mIoU' in markdown
    assert (work / 'matrix.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    # The fine-tuned rows really started from the pre-training checkpoint.
    log = (work / 'logs' / 'mask_rcnn_convnext_atto_pretrained.log').read_text()
    assert 'pretrain_convnext_atto' in log and 'loaded' in log

    table = (work / 'matrix.csv').read_text()
    second = run_tool(args, timeout=600).stdout
    assert '[demo] data: reusing' in second
    for key in STAGES:
        assert f'[demo] {key}: reusing the finished run' in second
    assert (work / 'matrix.csv').read_text() == table  # same numbers, nothing retrained
    assert first.split('[demo] the matrix')[1].splitlines()[:9] == \
        second.split('[demo] the matrix')[1].splitlines()[:9]
