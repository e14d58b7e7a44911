"""Feature groups of the Wasm 3.0 testsuite files, and why a group may still
have expected failures.

Every pinned 3.0 file belongs to exactly one group (its proposal, read from
the file's name and folder); the manifest records, per file and executor
model, the commands that are expected to fail until the group's feature is
implemented, and the reason given here.  A group whose feature is complete
has no reason: the manifest then may not list a failure for it.

The per-feature report of ``python -m conformance`` is grouped the same way.
"""

import fnmatch

# group -> (what it is, reason for expected failures or None when complete).
GROUPS = {
    'core': ('2.0 files as extended for 3.0 (their new cases use 3.0 types and encodings)',
             None),
    'annotations': ('text-format annotations, quoted identifiers, custom-section annotations',
                    None),
    'tail-call': ('return_call, return_call_indirect', None),
    'multi-memory': ('several memories per module', None),
    'memory64': ('64-bit memories and tables', None),
    'function-references': ('typed function references', None),
    'gc': ('structs, arrays, i31, subtyping, casts', None),
    'exceptions': ('try_table, throw, throw_ref, tags', None),
    # their text modules write the legacy try folded, (try (do ...) (catch ...)),
    # which conformance.wat reads by unfolding it (conformance/unfold.py)
    'legacy-exceptions': ('try/catch/delegate/rethrow', None),
    'relaxed-simd': ('relaxed SIMD', None),
    'threads': ('post-3.0 proposal: threads (shared memory, atomics)',
                'post-3.0 proposal, not part of Wasm 3.0: not implemented'),
    'custom-page-sizes': ('post-3.0 proposal: custom page sizes',
                          'post-3.0 proposal, not part of Wasm 3.0: not implemented'),
    'wide-arithmetic': ('post-3.0 proposal: wide arithmetic',
                        'post-3.0 proposal, not part of Wasm 3.0: not implemented'),
    'custom-descriptors': ('post-3.0 proposal: custom descriptors',
                           'post-3.0 proposal, not part of Wasm 3.0: not implemented'),
}

_MEMORY64 = '''address64 align64 binary_leb128_64 bulk64 call_indirect64 endianness64
float_memory64 load64 memory64 memory64-imports memory_copy64 memory_fill64 memory_grow64
memory_init64 memory_redundancy64 memory_trap64 table64 table_copy64 table_fill64 table_get64
table_grow64 table_init64 table_set64 table_size64'''
_MULTI_MEMORY = '''address0 address1 align0 binary0 data0 data1 data_drop0 exports0 float_exprs0
float_exprs1 float_memory0 imports0 imports1 imports2 imports3 imports4 linking0 linking1
linking2 linking3 load0 load1 load2 memory-multi memory_copy0 memory_copy1 memory_fill0
memory_init0 memory_size0 memory_size1 memory_size2 memory_size3 memory_size_import
memory_trap0 memory_trap1 simd_memory-multi start0 store0 store1 store2 traps0'''
_FUNC_REFS = 'call_ref return_call_ref br_on_null br_on_non_null ref_as_non_null local_init'
_GC = '''array array_copy array_fill array_init_data array_init_elem array_new_data
array_new_elem binary-gc br_on_cast br_on_cast_fail extern i31 ref ref_cast ref_eq ref_test
struct type-canon type-equivalence type-rec type-subtyping table-sub'''
_EXCEPTIONS = 'tag throw throw_ref try_table instance'
_RELAXED = '''relaxed_dot_product relaxed_laneselect relaxed_madd_nmadd relaxed_min_max
i16x8_relaxed_q15mulr_s i32x4_relaxed_trunc i8x16_relaxed_swizzle'''

# (pattern on the file's path inside wasm-3.0/, group); first match wins.
_RULES = [
    ('proposals/threads/*', 'threads'),
    ('proposals/custom-page-sizes/*', 'custom-page-sizes'),
    ('proposals/wide-arithmetic/*', 'wide-arithmetic'),
    ('proposals/custom-descriptors/*', 'custom-descriptors'),
    ('legacy/*', 'legacy-exceptions'),
    ('custom/*', 'annotations'),
    ('annotations.wast', 'annotations'),
    ('id.wast', 'annotations'),
    ('return_call.wast', 'tail-call'),
    ('return_call_indirect.wast', 'tail-call'),
] + [(f'{n}.wast', 'memory64') for n in _MEMORY64.split()] \
  + [(f'{n}.wast', 'multi-memory') for n in _MULTI_MEMORY.split()] \
  + [(f'{n}.wast', 'function-references') for n in _FUNC_REFS.split()] \
  + [(f'{n}.wast', 'gc') for n in _GC.split()] \
  + [(f'{n}.wast', 'exceptions') for n in _EXCEPTIONS.split()] \
  + [(f'{n}.wast', 'relaxed-simd') for n in _RELAXED.split()]


# Single commands that need another group's feature than their file's.
_COMMANDS = {
    ('custom/name_annot.wast', 34): 'exceptions',      # names of tags
    ('table_init64.wast', 2457): 'gc',                 # an arrayref table
    ('table_init64.wast', 2471): 'gc',
}
# exception files whose cases also use another group's feature
_COMMANDS.update({('tag.wast', n): 'gc' for n in (30, 38, 40, 48, 59)})   # rec types
_COMMANDS.update({('try_table.wast', n): 'function-references'             # (ref $t)
                  for n in (420, 464, 465, 466, 467, 468, 470, 483)})
_COMMANDS.update({('instance.wast', n): 'function-references'              # table initializers
                  for n in (3, 10, 11, 12, 13, 109, 125, 126)})
_COMMANDS.update({('instance.wast', n): 'multi-memory'                     # two memories
                  for n in (15, 54, 55, 56, 57, 62, 101, 102, 103, 104, 128, 167, 168, 169, 170)})


def group_of(name, line=None):
    """The feature group of a 3.0 file (path relative to wasm-3.0/), or of
    the command at ``line`` in it."""
    if (name, line) in _COMMANDS:
        return _COMMANDS[(name, line)]
    for pattern, group in _RULES:
        if fnmatch.fnmatchcase(name, pattern):
            return group
    return 'core'


def reason_of(group):
    """Why failures of this group are expected; None: they are not."""
    return GROUPS[group][1]


def files_of(groups):
    """The pinned wasm-3.0 files of the given feature groups (manifest order)."""
    from .manifest import load
    return [name for name in load()['suites']['wasm-3.0']['files'] if group_of(name) in groups]


if __name__ == '__main__':      # python -m spectests.features GROUP...: their files, one a line
    import sys
    unknown = [g for g in sys.argv[1:] if g not in GROUPS]
    if unknown:
        sys.exit(f'unknown feature group {unknown[0]!r}: one of {", ".join(GROUPS)}')
    print('\n'.join(files_of(sys.argv[1:])))
