#!/usr/bin/env bash
# session 12: the bench's SM-clock column on the GPU (ad-hoc build): the NVML monitor's GPU test, then the gathered
# bench with --cooldown-ms 0 and 2000 (each row's clock)
set -u
source .gpu/build_k.sh
$CXX -c src/bench/gpu_clock.cpp -o /tmp/o2_clock.o && $CXX -c tests/gpu/test_bench_clock.cpp -o /tmp/o2_tclock.o && \
  g++ /tmp/o2_tclock.o /tmp/o2_clock.o $COMMON -o /tmp/gclock $LIBS -ldl /tmp/deps/usr/lib/x86_64-linux-gnu/libgtest.a /tmp/deps/usr/lib/x86_64-linux-gnu/libgtest_main.a && echo GC_OK
g++ /tmp/bench_main.o /tmp/o/kernels_bench.cpp.o /tmp/o/timing.cpp.o /tmp/o2_clock.o $COMMON -o /tmp/kb2 $LIBS -ldl && echo KB2_OK
timeout 60 /tmp/gclock --gtest_color=no 2>&1 | grep -E "OK \]|FAILED|SM clock|Failure|available|rror" | head
BENCH_NO_PEERS=1 timeout 100 /tmp/kb2 gathered_attention 2>&1 | tr -s " " | head -12
BENCH_COOLDOWN_MS=2000 BENCH_NO_PEERS=1 timeout 100 /tmp/kb2 gathered_attention 2>&1 | tr -s " " | head -12
echo "done $(( $(date +%s) - t0 )) s"
