"""``python -m bench`` runs and writes its JSON; the label-replay workload's
one-pass block structure gives exactly what replaying the code from the
start gives (no timing is asserted: bench/results.json records the speed)."""

import json
import os
import subprocess
import sys

from engine import embedding
from engine.translate import ModuleView
from engine.valid import blocks_open_at, operand_types
from fuzz import gen

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_block_structure_equals_replaying_from_the_start():
    for seed in range(12):
        gm = gen.from_seed(seed)
        module = embedding.module_decode(gm.wasm)
        info = embedding.module_validate(module)
        view = ModuleView(module, info)
        for k, f in enumerate(module.funcs):
            fidx = view.nimported + k
            for pc in range(len(f.body)):
                got = view.open_blocks(fidx, pc)
                assert [b for b, _ in got] == blocks_open_at(f.body, pc)
                assert all(list(t) == operand_types(module, k, b) for b, t in got)


def test_bench_quick_run_writes_json(tmp_path):
    out = tmp_path / 'r.json'
    p = subprocess.run([sys.executable, '-m', 'bench', 'label-replay', '--quick', '--json', str(out)],
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    rows = json.loads(out.read_text())['workloads']['label-replay']['rows']
    assert [r['labels'] for r in rows] == [2001, 8001]
    assert all(r['cpu_seconds'] >= 0 for r in rows)
    p = subprocess.run([sys.executable, '-m', 'bench', 'nope'], cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "unknown workload 'nope'" in p.stderr
