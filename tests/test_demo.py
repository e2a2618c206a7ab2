"""`make demo` runs its real stages; a reduced run (a few iterations) checks the code path."""
import csv
import json
import os.path as osp
import re
import sys
from pathlib import Path

import pytest
from conftest import REPO, load_tool, run_tool

from backbones.analysis.results import aggregate_seeds, csv_fields, format_markdown, read_run

# The demo's library sits beside tools/demo.py, which imports it from tools/ (not a package).
sys.path.append(osp.join(REPO, 'tools'))

from demo_lib import STAGES, Stage, run_demo, stage_table  # noqa: E402
from demo_lib.runner import (critical_path, init_options, make_data, plan_order,  # noqa: E402
                             run_all, simulated_minutes)
from demo_lib.stages import TRIVIAL_SEG_LABEL, seeded  # noqa: E402

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
    """The plan starts the pre-trainings (three per seed) first and, for the demo's own stages
    (one seed and three), comes within 0.1 min of the lower bound: all the work split evenly
    over the two workers, or the longest chain of stages if that is longer."""
    pretrainings = {s.key for s in STAGES if s.data == 'cls'}
    assert len(pretrainings) == 3
    for seeds in (1, 3):
        stages = [s for seed in range(seeds) for s in seeded(STAGES, seed)]
        plan = plan_order(stages, 2)
        assert sorted(s.key for s in plan) == sorted(s.key for s in stages)
        assert all(s.data == 'cls' for s in plan[:3 * seeds])  # every seed's pre-trainings
        bound = max(sum(s.minutes for s in stages) / 2, max(critical_path(stages).values()))
        assert bound - 1e-9 <= simulated_minutes(plan, 2) <= bound + 0.1


def test_seeded_replicates_chain_each_seed_to_its_own_pretraining():
    assert seeded(STAGES, 0) == STAGES
    one = seeded(STAGES, 2)
    assert [s.key for s in one] == [f'seed2/{k}' for k in KEYS]
    assert all(s.seed == 2 and s.label == b.label for s, b in zip(one, STAGES))
    assert {s.init_from for s in one} == {None} | {f'seed2/{s.init_from}' for s in STAGES
                                                   if s.init_from}
    stage_table(one)  # every init_from names an earlier stage of the same seed
    with pytest.raises(ValueError, match='seed must be >= 0'):
        seeded(STAGES, -1)
    with pytest.raises(SystemExit):
        load_tool('demo.py').parse_args(['--seeds', '0'])
    assert load_tool('demo.py').parse_args(['--seeds', '3']).seeds == 3


def test_aggregate_seeds_gives_mean_std_and_range_per_cell():
    seed = [dict(model='a', params_m=3.0, top1=90.0, box_ap=None, train_time_s=60.0),
            dict(model='b', params_m=4.0, top1=None, box_ap=30.0, train_time_s=None)]
    other = [dict(seed[0], top1=80.0, train_time_s=80.0), dict(seed[1], box_ap=36.0)]
    third = [dict(seed[0], top1=85.0, train_time_s=70.0), dict(seed[1], box_ap=33.0)]
    a, b = aggregate_seeds([seed, other, third])
    assert (a['top1'], a['top1_std'], a['top1_min'], a['top1_max']) == (85.0, 5.0, 80.0, 90.0)
    assert a['train_time_s'] == 70.0 and a['params_m'] == 3.0 and a['seeds'] == 3
    assert b['box_ap'] == 33.0 and b['box_ap_std'] == pytest.approx(3.0)
    assert 'top1_std' not in b and b['top1'] is None
    table = format_markdown([a, b])
    assert '| 85.0 (80.0-90.0) |' in table and '| 33.0 (30.0-36.0) |' in table
    fields = csv_fields([a, b])
    assert fields[:5] == ['model', 'params_m', 'gflops', 'top1', 'top1_std']
    assert fields[-1] == 'seeds' and 'top1_std' not in csv_fields(seed)
    assert aggregate_seeds([seed]) == [dict(r, seeds=1, **{
        f'{c}{s}': (0.0 if s == '_std' else r[c]) for c in ('top1', 'box_ap', 'train_time_s')
        if r[c] is not None for s in ('_std', '_min', '_max')}) for r in seed]
    with pytest.raises(ValueError, match='seed 1 has the rows'):
        aggregate_seeds([seed, seed[:1]])


def test_every_backbone_row_starts_from_its_classifier_checkpoint(tmp_path):
    """The checkpoint each pre-training stage writes (MMEngine's layout, ``backbone.*`` keys of
    our classifier) initialises every detection and segmentation row that names it, ResNet and
    Swin (MMDetection's / MMSegmentation's own code) as ConvNeXt: every backbone tensor comes
    from the file, none is left at its random init."""
    import torch
    from mmdet.registry import MODELS as DET
    from mmengine.config import Config
    from mmengine.registry import MODELS as ROOT
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS as SEG

    import backbones  # noqa: F401  (registrations)
    table = stage_table()
    files = {}
    for stage in STAGES:
        if stage.data != 'cls':
            continue
        torch.manual_seed(0)
        init_default_scope('mmengine')
        classifier = ROOT.build(Config.fromfile(osp.join(REPO, stage.config)).model)
        classifier.init_weights()
        path = tmp_path / f'{stage.key}.pth'
        torch.save(dict(meta=dict(epoch=1), state_dict=classifier.state_dict()), path)
        files[stage.key] = (str(path), {k[len('backbone.'):]: v for k, v in
                                        classifier.state_dict().items()
                                        if k.startswith('backbone.')})
    fine_tuned = [s for s in STAGES if s.init_from]
    assert {table[s.init_from].config for s in fine_tuned} == {
        f'configs/classification/{a}_shapes.py' for a in ('convnext_atto', 'resnet', 'swin')}
    for stage in fine_tuned:
        path, expected = files[stage.init_from]
        cfg = Config.fromfile(osp.join(REPO, stage.config))
        cfg.merge_from_dict(dict(o.split('=', 1) for o in init_options(path)))
        scope, registry = ('mmdet', DET) if stage.data == 'det' else ('mmseg', SEG)
        init_default_scope(scope)
        torch.manual_seed(1)
        model = registry.build(cfg.model)
        model.init_weights()
        own = model.backbone.state_dict()
        assert set(own) == set(expected), (stage.key, set(own) ^ set(expected))
        differ = [k for k in own if not torch.equal(own[k], expected[k])]
        assert not differ, (stage.key, differ[:5])


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
    # The fine-tuned rows read their own pre-training's checkpoint: ConvNeXt's loader, MMEngine's
    # Pretrained init (ResNet) and MMDetection's/MMSegmentation's Swin each log the file.
    for stage in STAGES:
        if stage.init_from:
            log = (work / 'logs' / f'{stage.key}.log').read_text()
            loaded = (r'(loaded \d+/\d+ tensors from|load backbone\. in model from:|Loads '
                      r'checkpoint by \w+ backend from path:) ' + re.escape(
                          f'{work}/{stage.init_from}/epoch_1.pth'))
            assert re.search(loaded, log), stage.key

    table = (work / 'matrix.csv').read_text()
    second = run_tool(args, timeout=600).stdout
    assert '[demo] data: reusing' in second
    for key in KEYS:
        assert f'[demo] {key}: reusing the finished run' in second
    assert (work / 'matrix.csv').read_text() == table  # same numbers, nothing retrained
    lines = len(STAGES) + 4  # the heading, the table, the line after
    assert first.split("[demo] the matrix")[1].splitlines()[:lines] == \
        second.split("[demo] the matrix")[1].splitlines()[:lines]


@pytest.mark.slow
def test_reduced_demo_with_seeds_gives_mean_and_spread(tmp_path):
    """``seeds=2`` on the ResNet chain (pre-training, Mask R-CNN, UperNet): the second seed trains
    its own chain under seed1/, and the matrix holds each cell's mean over the two seeds with
    its spread; the one-seed CSV's columns stay, in order."""
    stages = [s for s in STAGES if 'resnet' in s.key]
    work, data = tmp_path / 'demo', tmp_path / 'shapes'
    run_demo(str(work), str(data), reduced=True, stages=stages, seeds=2)
    for stage in stages:
        for key in (stage.key, f'seed1/{stage.key}'):
            assert (work / key / 'demo_stage.json').exists(), key
    log = (work / 'logs' / 'seed1' / 'mask_rcnn_resnet_pretrained.log').read_text()
    assert 'randomness = dict(seed=1)' in log
    assert f'load backbone. in model from: {work}/seed1/pretrain_resnet/' in log
    with open(work / 'matrix.csv') as f:
        reader = csv.DictReader(f)
        rows, fields = list(reader), reader.fieldnames
    one_seed = ['model', 'params_m', 'gflops', 'top1', 'box_ap', 'mask_ap', 'miou',
                'train_time_s', 'iters', 'work_dir']
    assert [f for f in fields if f in one_seed] == one_seed
    assert {'top1_std', 'top1_min', 'top1_max', 'miou_min', 'seeds'} <= set(fields)
    top1 = [read_run(str(d / 'pretrain_resnet')).values['top1'] for d in (work, work / 'seed1')]
    first = rows[0]
    assert first['seeds'] == '2'
    assert float(first['top1']) == pytest.approx(sum(top1) / 2)
    assert float(first['top1_min']) == pytest.approx(min(top1))
    assert float(first['top1_max']) == pytest.approx(max(top1))
    markdown = (work / 'matrix.md').read_text()
    assert f'({min(top1):.1f}-{max(top1):.1f})' in markdown
    assert (work / 'matrix.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
