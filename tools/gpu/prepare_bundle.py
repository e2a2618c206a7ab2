"""Prepare what tools/gpu/gpu_check.sh needs on the GPU machine (Python 3.12, its own torch, no
network, at most 64 MiB carried per run): the wheels it lacks and mmcv's source archive.

    python tools/gpu/prepare_bundle.py [--out gpu_bundle] [--mmcv-wheel PATH ...]
    make gpu-bundle

Versions are those of the environment running this script (the set-up's pins). The bundle is
checked before it is called ready: every file in manifest.json with its sha256, every wheel's
requirements provided by the bundle or by the GPU machine's own packages, under the size limit.
Carry it with the device tool as `carry: ["gpu_bundle"]`.
"""
import argparse
import glob
import importlib.metadata as md
import os
import os.path as osp
import shutil
import subprocess
import sys

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
sys.path.insert(0, REPO)  # run from a clone: the repository root (gpu_lib imports backbones)
sys.path.insert(0, HERE)  # its sibling gpu_lib.py

import gpu_lib  # noqa: E402


def pip(*args):
    cmd = [sys.executable, '-m', 'pip', '--disable-pip-version-check', *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f'{" ".join(cmd)} failed:\n{proc.stderr[-3000:]}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=osp.join(REPO, 'gpu_bundle'), help='bundle folder')
    parser.add_argument('--mmcv-wheel', nargs='*', default=[],
                        help='prebuilt mmcv wheels to try there before building (cp312, built '
                        'against the GPU machine\'s torch)')
    args = parser.parse_args(argv)

    if osp.isdir(args.out):
        shutil.rmtree(args.out)  # never mix two preparations
    wheels = osp.join(args.out, 'wheels')
    os.makedirs(wheels)
    pins = [f'{d}=={md.version(d)}' for d in gpu_lib.BUNDLE_DISTS]
    platforms = [a for p in gpu_lib.TARGET_PLATFORMS for a in ('--platform', p)]
    print(f'downloading {len(pins)} wheels for CPython {gpu_lib.TARGET_PYTHON}: '
          f'{" ".join(pins)}')
    pip('download', '-q', '--no-deps', '--only-binary=:all:', '--implementation', 'cp',
        '--python-version', gpu_lib.TARGET_PYTHON, *platforms, '-d', wheels, *pins)
    # pip prepares an sdist's metadata even to download it; mmcv's setup.py needs torch and
    # pkg_resources for that, hence no build isolation (this environment has both).
    pip('download', '-q', '--no-deps', '--no-binary', 'mmcv', '--no-build-isolation', '-d',
        args.out, 'mmcv==2.1.0')
    if args.mmcv_wheel:
        os.makedirs(osp.join(args.out, 'mmcv-prebuilt'))
        for path in args.mmcv_wheel:
            shutil.copy(path, osp.join(args.out, 'mmcv-prebuilt'))
    manifest = gpu_lib.write_manifest(args.out, dict(pins=pins, source='mmcv==2.1.0'))
    problems = gpu_lib.verify_bundle(args.out)
    for name in sorted(glob.glob(osp.join(wheels, '*.whl'))):
        print(f'  {osp.basename(name)}  {osp.getsize(name) / 2**20:.2f} MiB')
    print(f'bundle {args.out}: {len(manifest["files"])} files, {manifest["total_mib"]} MiB '
          f'(limit {gpu_lib.CARRY_LIMIT_MIB} MiB with the working tree)')
    for problem in problems:
        print(f'bundle problem: {problem}', file=sys.stderr)
    if problems:
        sys.exit(1)


if __name__ == '__main__':
    main()
