"""The generator's late features (``ModuleGen.assemble`` draws each after
every older choice, so a seed keeps the rest of its module): a test of one
compares a seed's module with and without it, with the newer ones off in
both; ``late_off`` patches them out by name."""

from fuzz import gen, gen3


def _keep(self, m, stops):
    return stops


def _nothing(self, *_):
    return None


# oldest first: (class, method, what it does when off)
LATE = (
    (gen3.ModuleGC, 'gc_floats', _keep),
    (gen.ModuleGen, 'reach', _keep),
    (gen3.ModuleGC, 'null_gc', _nothing),
    (gen3.ModuleGC, 'gc_wide', _keep),
    (gen3.ModuleFeatures3, 'deep_catch', _keep),
    (gen3.ModuleFeatures3, 'imported_any', _nothing),
    (gen3.ModuleFeatures3, 'bare_i31', _keep),
    (gen3.ModuleFeatures3, 'far_entry', _nothing),
)
NAMES = [name for _, name, _ in LATE]


def late_off(monkeypatch, *names, newer_than=None):
    """Patch out the late features ``names`` and, with ``newer_than``,
    every one newer than that one."""
    unknown = set(names) - set(NAMES) - {None}
    assert not unknown, unknown
    first = len(NAMES) if newer_than is None else NAMES.index(newer_than) + 1
    for k, (cls, name, off) in enumerate(LATE):
        if name in names or k >= first:
            monkeypatch.setattr(cls, name, off)
