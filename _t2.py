import sys, collections
from fuzz import gen, oracle
feats = gen.FEATURES | {'gc'}
ops = collections.Counter(); traps = collections.Counter(); fails = 0
lo, hi = int(sys.argv[1]), int(sys.argv[2])
for seed in range(lo, hi):
    gm = gen.from_seed(seed, features=feats)
    assert gen.validate(gm.wasm, feats) is None
    for f in gm.module.funcs:
        for i in f.body:
            if i.op.split('.')[0] in ('struct', 'array', 'i31', 'ref', 'br_on_cast', 'br_on_cast_fail', 'any', 'extern'):
                ops[i.op] += 1
    for args in gm.args[:1]:
        ref = oracle.uninterrupted(gm.wasm, gm.entry, args, 'wasmedge')
        traps[ref.trap] += 1
        o2 = oracle.uninterrupted(gm.wasm, gm.entry, args, 'wamr')
        out = oracle.compare(ref, o2, 'wamr', steps=False) + oracle.compare_wasmtime(gm.wasm, gm.entry, args, ref)
        if out:
            fails += 1
            if fails <= 4: print(seed, out[:3])
print('fails', fails); print(sorted(ops.items())); print(traps.most_common(8))
