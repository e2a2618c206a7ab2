"""`make demo` runs its real stages; a reduced run (a few iterations) checks the code path."""
import csv
import itertools
import json
import os.path as osp
import re
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_tool

# The demo's library sits beside tools/demo.py, which imports it from tools/ (not a package).
sys.path.append(osp.join(REPO, 'tools'))

from demo_lib import STAGES, Stage, stage_table  # noqa: E402
from demo_lib.runner import (critical_path, make_data, plan_order, run_all,  # noqa: E402
                             simulated_minutes)
from demo_lib.stages import TRIVIAL_SEG_LABEL  # noqa: E402

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


def test_scheduler_starts_what_others_wait_for():
    pre = Stage('pre', 'P', 'c.py', 'cls', 8, minutes=2.0)
    long = Stage('long', 'L', 'c.py', 'det', 10, minutes=5.0)
    after = Stage('after', 'A', 'c.py', 'det', 10, init_from='pre', minutes=4.0)
    assert critical_path((pre, long, after)) == dict(pre=6.0, long=5.0, after=4.0)
    order = []
    run_all((pre, long, after), lambda stage: order.append(stage.key), jobs=1)
    assert order == ['pre', 'long', 'after']


def test_simulated_minutes_follows_the_workers():
    pre = Stage('pre', 'P', 'c.py', 'cls', 8, minutes=2.0)
    a = Stage('a', 'A', 'c.py', 'det', 10, minutes=3.0)
    after = Stage('after', 'F', 'c.py', 'det', 10, init_from='pre', minutes=1.0)
    # Two workers: pre 0-2 then after 2-3; a 0-3.
    assert simulated_minutes((pre, a, after), 2) == 3.0
    # One worker runs them back to back; a stage offered before what it waits for waits.
    assert simulated_minutes((pre, a, after), 1) == 6.0
    assert simulated_minutes((after, pre, a), 2) == 3.0
    with pytest.raises(ValueError, match='wait for stages'):
        simulated_minutes((after, ), 2)


def test_plan_order_keeps_both_workers_busy_to_the_end():
    """Critical path first leaves a worker idle at the end of the demo's own stages; the plan
    does better, starts the pre-training first, and comes within 0.1 min of the best order
    (every order of the demo's stages tried)."""
    path = critical_path(STAGES)
    by_path = sorted(STAGES, key=lambda s: -path[s.key])
    plan = plan_order(STAGES, 2)
    assert sorted(s.key for s in plan) == sorted(KEYS)
    assert plan[0].key == 'pretrain_convnext_atto'
    planned = simulated_minutes(plan, 2)
    assert planned < simulated_minutes(by_path, 2) - 0.3
    rest = [s for s in STAGES if s is not STAGES[0]]
    best = min(simulated_minutes([STAGES[0], *order], 2)
               for order in itertools.permutations(rest))
    assert planned <= best + 0.1 + 1e-9
    # Lower bound: all the work split evenly over the two workers.
    assert planned >= sum(s.minutes for s in STAGES) / 2 - 1e-9


def test_readme_demo_table_lists_the_stages():
    """The README's demo table has one row per stage, in the matrix's order and names."""
    readme = (Path(__file__).parents[1] / 'README.md').read_text()
    section = readme.split('The matrix of the last full run', 1)[1]
    table = re.search(r'^(\|.*\|\n)+', section, re.M).group(0).splitlines()
    models = [line.split('|')[1].strip() for line in table[2:]]
    assert models == [s.label for s in STAGES] + [TRIVIAL_SEG_LABEL]


def test_demo_data_is_reused_only_when_every_layout_holds_easy_scenes(tmp_path, capsys):
    """Cluttered (or unlabelled) data under --data is written over with the easy scenes."""
    data = tmp_path / 'shapes'
    for layout, easy in (('cls', True), ('coco', True), ('ade', False)):
        (data / layout).mkdir(parents=True)
        (data / layout / 'generator.json').write_text(json.dumps(dict(easy=easy)))
    (data / 'ade' / 'stale.png').write_bytes(b'x')
    make_data(str(data))
    assert 'does not hold the easy scenes' in capsys.readouterr().out
    assert not (data / 'ade' / 'stale.png').exists()
    for layout in ('cls', 'coco', 'ade'):
        assert json.loads((data / layout / 'generator.json').read_text())['easy'] is True
    assert any((data / 'ade' / 'images' / 'training').iterdir())
    make_data(str(data))
    assert '[demo] data: reusing' in capsys.readouterr().out


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
    assert [r['model'] for r in rows] == [s.label for s in STAGES] + [TRIVIAL_SEG_LABEL]
    metrics = dict(cls=('top1', ), det=('box_ap', 'mask_ap'), seg=('miou', ))
    for row, stage in zip(rows, STAGES):
        for column in ('top1', 'box_ap', 'mask_ap', 'miou'):
            assert bool(row[column]) == (column in metrics[stage.data]), (stage.key, column)
    # The floor of the UperNet rows: the background's pixel share over the 4 classes.
    assert 15 < float(rows[-1]['miou']) < 25 and not rows[-1]['box_ap']
    # A picture of each detector's and segmentor's predictions, drawn by their visualizers.
    for stage in STAGES:
        picture = work / 'pictures' / f'{stage.key}.png'
        assert picture.exists() == (stage.data != 'cls'), stage.key
        if stage.data != 'cls':
            assert picture.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'

    assert all(float(r['params_m']) > 0 and float(r['train_time_s']) > 0 for r in rows[:-1])
    markdown = (work / 'matrix.md').read_text()
    assert sum(line.startswith('| ') for line in markdown.splitlines()) == 2 + len(STAGES)
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
    lines = len(STAGES) + 4  # the heading, the table, the line after
    assert first.split("[demo] the matrix")[1].splitlines()[:lines] == \
        second.split("[demo] the matrix")[1].splitlines()[:lines]
