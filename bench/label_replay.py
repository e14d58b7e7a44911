"""Restoring into the WAMR model deep inside nested blocks.

The WAMR image set carries one label per open block, and the translator
rebuilds (and on reading checks) them by replaying the function's code.
Done naively, each label replays the code before its block, which is
quadratic in the nesting depth (issue 13 measured 2k blocks 3.0 s, 4k
9.8 s, 8k 39.6 s).  The workload: one function of N nested empty blocks
around a ``nop``; run it in the WasmEdge model up to the ``nop`` (all N
labels open), save, translate to WAMR and restore there, then run to the
end.  The timed part is translate + restore; it must grow linearly in N.
"""

from bench import cpu, workload
from engine.migrate import checkpoint, images as im
from engine import embedding
from engine.migrate.translate import translate
from fuzz.encode import u32

SIZES = (2000, 4000, 8000, 100_000)
QUICK_SIZES = (2000, 8000)


def nested_blocks_module(n):
    """A module exporting ``f`` = n nested ``block``s around one ``nop``."""
    body = b'\x00' + b'\x02\x40' * n + b'\x01' + b'\x0b' * n + b'\x0b'    # no locals

    def section(sid, payload):
        return bytes([sid]) + u32(len(payload)) + payload
    types = section(1, b'\x01\x60\x00\x00')
    funcs = section(3, b'\x01\x00')
    exports = section(7, b'\x01\x01f\x00\x00')
    code = section(10, b'\x01' + u32(len(body)) + body)
    return b'\x00asm\x01\x00\x00\x00' + types + funcs + exports + code


def restore_deep(n):
    data = nested_blocks_module(n)
    with cpu() as setup:
        store = embedding.store_init('wasmedge')
        module = embedding.module_decode(data)
        inst = embedding.module_instantiate(store, module, [], run_start=False)
        ex = store.new_executor()
        ex.start(inst.exports['f'][1], [])
        finished = ex.run(n)                     # before the nop: n labels open
        assert not finished
        images = checkpoint.save(ex, inst, im.module_sha256(data), 'f', [])
    with cpu() as t:
        wstore = embedding.store_init('wamr')
        winst = embedding.module_instantiate(wstore, module, [], run_start=False)
        wimages = translate(images, winst.module, winst.info, 'wamr')
        wex = checkpoint.restore(wstore, winst, wimages)
    labels = len(wimages.frames[0].labels)
    assert labels == n + 1, labels
    with cpu() as finish:
        assert wex.run(10 * n + 10)
    assert wex.steps == 2 * n + 2                # n blocks, nop, n ends, final end
    return {'case': f'{n} nested blocks', 'blocks': n, 'labels': labels,
            'cpu_seconds': round(t.seconds, 3), 'setup_cpu_seconds': round(setup.seconds, 3),
            'finish_cpu_seconds': round(finish.seconds, 3),
            'us_per_label': round(t.seconds / labels * 1e6, 2)}


@workload('label-replay', 'translate a WasmEdge image set stopped inside N nested blocks to '
                          'WAMR and restore it (WAMR label replay)')
def label_replay(quick=False):
    return [restore_deep(n) for n in (QUICK_SIZES if quick else SIZES)]
