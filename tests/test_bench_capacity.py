"""The capacity harness itself, in miniature: it ramps, holds, reports and draws (no figures judged)."""

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.support.uwsgi_server import ROOT

pytestmark = pytest.mark.slow


def test_a_short_ramp_steps_holds_and_plots(tmp_path):
    plot = tmp_path / 'capacity.svg'
    command = [sys.executable, '-m', 'benchmarks.capacity', '--kinds', 'windows', '--apps', 'project']
    command += ['--step', '3', '--hold', '3', '--most', '280', '--plot', str(plot)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    steps = [line for line in lines if 'stations' in line and 'offered' in line]
    assert [line.split()[2] for line in steps[:2]] == ['140', '280']  # kind, app, then the stations
    assert any('hold 3 s' in line for line in steps)
    assert any(line.strip().startswith('windows  project') and 'stations' in line for line in lines[-4:])
    svg = ET.parse(plot).getroot()  # noqa: S314 (a file this test made)
    lines_drawn = svg.findall('.//{http://www.w3.org/2000/svg}polyline')
    assert len(lines_drawn) == 2  # latency and queue age, one station kind
    assert all(len(line.get('points').split()) == 2 for line in lines_drawn)  # one point per ramp step
