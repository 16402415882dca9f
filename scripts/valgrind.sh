#!/usr/bin/env bash
# Runs every Rust test binary (the library's unit tests and each tests/*.rs, the property
# targets of tests/robust_kernels.rs included) under valgrind's memcheck. Any invalid read or
# write, use of an uninitialised value, bad free, or definitely/indirectly/possibly lost block
# fails the run (exit 1). The unsafe code it watches: the SIMD kernels' raw loads in
# src/simd.rs and the float32 view in src/kmeans.rs.
#
# Two passes: the AVX2 kernels, then the scalar ones (GIO_RS_NO_SIMD=1). valgrind (3.19 here)
# does not emulate AVX-512 and hides it from CPUID, so the AVX-512 kernels are not covered;
# GIO_RS_NO_AVX512=1 only makes that explicit. RAYON_NUM_THREADS=2 keeps the parallel paths on.
#
# Usage: scripts/valgrind.sh            (PROPTEST_CASES, default 16, sizes the property targets;
#                                        the large-shape targets then run one case each)
# Not part of CI: it takes several minutes. Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || {
    echo "valgrind is not installed (apt-get install valgrind)" >&2
    exit 2
}
export PROPTEST_CASES="${PROPTEST_CASES:-16}"
export RAYON_NUM_THREADS=2 GIO_RS_NO_AVX512=1

# Memory owned by threads still alive when the process exits (rayon never joins its worker
# threads; std keeps the main thread's handle): valgrind calls these blocks "possibly lost".
# Only that kind, and only from these allocation sites, is suppressed; nothing of gio_rs is.
suppressions="$(mktemp)"
trap 'rm -f "$suppressions"' EXIT
cat >"$suppressions" <<'EOF'
{
   glibc-tls-of-a-live-thread
   Memcheck:Leak
   match-leak-kinds: possible
   fun:calloc
   ...
   fun:_dl_allocate_tls
}
{
   crossbeam-epoch-handle-of-a-live-rayon-worker
   Memcheck:Leak
   match-leak-kinds: possible
   ...
   fun:*crossbeam_epoch*Collector*register*
}
{
   std-main-thread-handle
   Memcheck:Leak
   match-leak-kinds: possible
   fun:malloc
   ...
   fun:*init_current*
}
EOF

# The test binaries of the default (pure-Rust) build, as cargo reports them.
mapfile -t binaries < <(
    cargo test --no-run --message-format=json 2>/dev/null |
        grep -o '"executable":"[^"]*"' | cut -d'"' -f4
)
[ "${#binaries[@]}" -gt 0 ] || {
    echo "cargo test --no-run produced no test binaries" >&2
    exit 2
}

start=$SECONDS
failed=0
for simd in avx2 scalar; do
    if [ "$simd" = scalar ]; then export GIO_RS_NO_SIMD=1; else unset GIO_RS_NO_SIMD; fi
    for binary in "${binaries[@]}"; do
        name="$(basename "$binary")"
        echo "== ${name%-*} ($simd kernels)"
        valgrind --quiet --error-exitcode=1 --leak-check=full \
            --errors-for-leak-kinds=definite,indirect,possible \
            --show-leak-kinds=definite,indirect,possible \
            --suppressions="$suppressions" \
            "$binary" -q || failed=1
    done
done
echo "valgrind: ${#binaries[@]} test binaries × 2 kernel sets in $((SECONDS - start)) s," \
    "PROPTEST_CASES=$PROPTEST_CASES: $([ $failed = 0 ] && echo clean || echo ERRORS FOUND)"
exit $failed
