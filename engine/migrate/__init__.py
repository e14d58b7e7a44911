"""Migration, one layer above execution: a stopped executor's state as image sets of either model,
the runtime-neutral snapshot, the forks' own layout, and the translator between them."""
