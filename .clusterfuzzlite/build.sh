#!/bin/bash -eu
# Builds the atheris fuzzers of wasm-migrate into $OUT, the OSS-Fuzz /
# ClusterFuzzLite way (inside their base-builder-python image, where
# compile_python_fuzzer packages each one) or, without Docker, as launcher
# scripts that run the checkout's code with this machine's python3
# (docs/oss-fuzz.md).  Each fuzzer gets a seed corpus and an .options file.
#
#   OUT=/tmp/fuzzers .clusterfuzzlite/build.sh

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${SRC:-}" ] && [ -d "$SRC/wasm-migrate" ]; then
  ROOT="$SRC/wasm-migrate"
fi
: "${OUT:?set OUT to the folder the fuzzers go to}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"

# the project and what the targets import (atheris, hypothesis, wasmtime,
# wasm-tools): installed in the builder image; locally they must be already
# (pip install -e ".[fuzz]"), and the launchers run the checkout's code
if command -v compile_python_fuzzer >/dev/null; then
  "$PY" -m pip install "$ROOT[fuzz]"
elif ! PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" -c 'import atheris, hypothesis, wasmtime, engine, fuzz.gen' 2>/dev/null; then
  echo "error: the fuzz extra is not installed: pip install -e \"$ROOT[fuzz]\"" >&2
  exit 2
fi

for fuzzer in migration_fuzzer robust_fuzzer; do
  if command -v compile_python_fuzzer >/dev/null; then
    compile_python_fuzzer "$ROOT/.clusterfuzzlite/$fuzzer.py"
  else
    cat > "$OUT/$fuzzer" <<LAUNCHER
#!/bin/sh
PYTHONPATH="$ROOT\${PYTHONPATH:+:\$PYTHONPATH}" exec "$PY" "$ROOT/.clusterfuzzlite/$fuzzer.py" "\$@"
LAUNCHER
    chmod +x "$OUT/$fuzzer"
  fi
done

cat > "$OUT/migration_fuzzer.options" <<'OPTS'
[libfuzzer]
max_len = 4096
len_control = 0
timeout = 60
rss_limit_mb = 4096
OPTS
cat > "$OUT/robust_fuzzer.options" <<'OPTS'
[libfuzzer]
timeout = 2
rss_limit_mb = 3072
OPTS

# seed corpora: full-size random inputs for the module generator (libFuzzer
# grows one empty input slowly), and small valid modules for the decoder
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" - "$OUT" <<'SEEDS'
import io, random, sys, zipfile
from fuzz import gen
out = sys.argv[1]
rng = random.Random(0)
with zipfile.ZipFile(f'{out}/migration_fuzzer_seed_corpus.zip', 'w') as z:
    for i in range(16):
        z.writestr(f'seed{i}', rng.randbytes(rng.randint(256, 2048)))
with zipfile.ZipFile(f'{out}/robust_fuzzer_seed_corpus.zip', 'w') as z:
    for i in range(16):
        z.writestr(f'module{i}', gen.from_seed(i).wasm)
SEEDS
echo "built migration_fuzzer and robust_fuzzer in $OUT"
