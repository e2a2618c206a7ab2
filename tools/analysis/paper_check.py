"""Check our models against the paper's params and GFLOPs, row by row.

    python tools/analysis/paper_check.py [--only PATTERN...] [--skip-flops]
        [--flops-only PATTERN...] [--paper FILE]

Rows (names to match with --only / --flops-only, shell-style patterns):
  backbone/<preset>    ImageNet classifier of a ConvNeXt preset at 224 (the paper's Table 1)
  isotropic/<preset>   isotropic ConvNeXt classifier at 224
  roadmap/<step>, roadmap/kernel_<k>   roadmap steps and kernel variants (GFLOPs only)
  classification/<config stem>, coco/<config stem>, ade20k/<config stem>: the full model of
                       configs/{classification,detection,segmentation}/<stem>.py at the paper's
                       resolution (COCO 1280x800, ADE20K 2048x512 / 2560x640)
The figures come from backbones/data/paper.json; tolerances (params 2%, FLOPs 5%) too.
Exits 1 when any check fails (or a COCO/ADE20K row has no config), 0 otherwise. Everything
runs on the CPU; FLOPs of the big detectors/segmentors take minutes each, so --skip-flops or
--flops-only narrow what is counted, and the output says which checks ran.
"""
import argparse
import fnmatch
import os.path as osp
import sys
import time
import warnings

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from backbones.analysis.paper import load_paper  # noqa: E402
from backbones.analysis.paper_rows import format_cell, paper_rows, relative  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Compare params/FLOPs with the paper')
    parser.add_argument('--only', nargs='+', metavar='PATTERN',
                        help='check only the rows whose name matches one of these')
    parser.add_argument('--skip-flops', action='store_true', help='check params only')
    parser.add_argument('--flops-only', nargs='+', metavar='PATTERN',
                        help='count FLOPs only for these rows (params for all selected rows)')
    parser.add_argument('--paper', help='paper data file (default: backbones/data/paper.json)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    warnings.filterwarnings('ignore', category=UserWarning)  # mmseg's deprecation notes
    try:
        paper = load_paper(args.paper)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise SystemExit(f'paper_check: {e}')
    tol = paper['tolerance']
    selected = [r for r in paper_rows(paper, osp.join(REPO, 'configs'))
                if not args.only or any(fnmatch.fnmatch(r[0], p) for p in args.only)]
    if not selected:
        raise SystemExit(f'paper_check: no row matches {args.only}')
    print(f'tolerance: params {100 * tol["params"]:.0f}%, FLOPs {100 * tol["flops"]:.0f}% '
          '(params in M, FLOPs in G, ours / paper (difference))')
    print(f'| {"row":<45} | {"params (M)":<28} | {"GFLOPs":<28} | status | time |')
    print(f'|{"-" * 47}|{"-" * 30}|{"-" * 30}|--------|------|')
    failures, missing, ran_params, ran_flops, skipped_flops = [], [], 0, 0, []
    for name, ref_params, ref_flops, measure in selected:
        if measure is None:
            missing.append(name)
            print(f'| {name:<45} | {"no config":<28} | {"-":<28} | ' +
                  ('FAIL' if not name.startswith('classification/') else 'skip') + '   | - |')
            continue
        want_flops = ref_flops is not None and not args.skip_flops and (
            not args.flops_only or any(fnmatch.fnmatch(name, p) for p in args.flops_only))
        if ref_flops is not None and not want_flops:
            skipped_flops.append(name)
        start = time.time()
        params, flops = measure(want_flops)
        bad = []
        p_rel, f_rel = relative(params, ref_params), relative(flops, ref_flops)
        if p_rel is not None:
            ran_params += 1
            if abs(p_rel) > tol['params']:
                bad.append('params')
        if f_rel is not None:
            ran_flops += 1
            if abs(f_rel) > tol['flops']:
                bad.append('FLOPs')
        if bad:
            failures.append(f'{name} ({", ".join(bad)})')
        status = 'FAIL' if bad else ('ok' if p_rel is not None or f_rel is not None else 'skip')
        print(f'| {name:<45} | {format_cell(params, ref_params, p_rel, 1e6):<28} | '
              f'{format_cell(flops, ref_flops, f_rel, 1e9):<28} | {status:<6} | '
              f'{time.time() - start:.0f} s |', flush=True)
    print(f'\nchecks run: {ran_params} params, {ran_flops} FLOPs, over {len(selected)} rows')
    if skipped_flops:
        print(f'FLOPs not counted ({len(skipped_flops)}): {", ".join(skipped_flops)}')
    config_missing = [m for m in missing if not m.startswith('classification/')]
    if missing:
        print(f'rows without a config ({len(missing)}): {", ".join(missing)}')
    if failures or config_missing:
        print(f'FAILED: {", ".join(failures + [m + " (no config)" for m in config_missing])}')
        sys.exit(1)
    print('all checks within tolerance')


if __name__ == '__main__':
    main()
