"""`make demo` runs its real stages; a reduced run (a few iterations) checks the code path."""
import csv

import pytest
from conftest import run_tool

from backbones.demo import STAGES, Stage, stage_table

KEYS = [s.key for s in STAGES]


def test_stage_table_is_consistent():
    table = stage_table()
    assert list(table) == KEYS
    for stage in STAGES:
        assert stage.label.split(',')[0] and stage.minutes > 0 and stage.reduced < stage.length
    with pytest.raises(ValueError, match='not an earlier stage'):
        stage_table((Stage('a', 'A', 'c.py', 'det', 10, init_from='b'), ))
    with pytest.raises(ValueError, match='used twice'):
        stage_table((STAGES[0], STAGES[0]))


@pytest.mark.slow
def test_reduced_demo_builds_the_matrix_and_reuses_stages(tmp_path):
    work = tmp_path / 'demo'
    args = ['tools/demo.py', '--work-dir', str(work), '--data', str(tmp_path / 'shapes'),
            '--reduced']
    first = run_tool(args, timeout=1200).stdout
    assert '[demo] data: written to' in first
    for key in KEYS:
        assert f'[demo] {key}: done in' in first
    # The matrix: one row per stage, with the metric of its task, in three formats.
    with open(work / 'matrix.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['model'] for r in rows] == [s.label for s in STAGES]
    metrics = dict(cls=('top1', ), det=('box_ap', 'mask_ap'), seg=('miou', ))
    for row, stage in zip(rows, STAGES):
        for column in ('top1', 'box_ap', 'mask_ap', 'miou'):
            assert bool(row[column]) == (column in metrics[stage.data]), (stage.key, column)
    assert all(float(r['params_m']) > 0 and float(r['train_time_s']) > 0 for r in rows)
    markdown = (work / 'matrix.md').read_text()
    assert sum(line.startswith('| ') for line in markdown.splitlines()) == 1 + len(STAGES)
    assert 'mIoU' in markdown
    assert (work / 'matrix.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    # The fine-tuned rows really started from the pre-training checkpoint.
    for stage in STAGES:
        if stage.init_from:
            log = (work / 'logs' / f'{stage.key}.log').read_text()
            assert stage.init_from in log and 'loaded' in log, stage.key

    table = (work / 'matrix.csv').read_text()
    second = run_tool(args, timeout=600).stdout
    assert '[demo] data: reusing' in second
    for key in KEYS:
        assert f'[demo] {key}: reusing the finished run' in second
    assert (work / 'matrix.csv').read_text() == table  # same numbers, nothing retrained
    assert first.split('[demo] the matrix')[1].splitlines()[:9] == \
        second.split('[demo] the matrix')[1].splitlines()[:9]
