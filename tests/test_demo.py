"""`make demo` runs its real stages; a reduced run (2 iterations) checks the code path."""
import pytest
from conftest import run_tool


@pytest.mark.slow
def test_reduced_demo_runs_and_reuses_stages(tmp_path):
    args = ['tools/demo.py', '--work-dir', str(tmp_path / 'demo'), '--data',
            str(tmp_path / 'shapes'), '--iters', '2']
    first = run_tool(args).stdout
    assert '[demo] data: written to' in first
    assert 'trained in' in first
    assert 'box AP' in first and 'mask AP' in first
    second = run_tool(args).stdout
    assert '[demo] data: reusing' in second and '[demo] train: reusing' in second
    assert second.splitlines()[-1] == first.splitlines()[-1]  # same metrics, not retrained
