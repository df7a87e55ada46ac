set -u
O=${OUT:-/tmp/out}; t0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.max.sm,driver_version --format=csv,noheader | tee $O/card.txt
git log -1 --format=%H >> $O/card.txt 2>/dev/null || true
NV=/usr/local/cuda/bin/nvcc; NCU=/usr/local/cuda/bin/ncu
mkdir -p /tmp/deps && dpkg -x .gpu/kdeps/libgtest-dev*.deb /tmp/deps
TP=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')
mkdir -p /tmp/o /tmp/o/fail
for f in kernels/*/*.cu; do ( $NV -std=c++17 -gencode arch=compute_90a,code=sm_90a -O3 --expt-relaxed-constexpr -lineinfo -Ikernels -c $f -o /tmp/o/$(basename $f).o || touch /tmp/o/fail/$(basename $f) ) & done
CXX="g++ -std=c++17 -O2 -DDYSRA_WITH_CUDA=1 -Iinclude -Isrc -Ikernels -isystem /usr/local/cuda/include -isystem $TP/include -isystem $TP/include/torch/csrc/api/include -isystem /tmp/deps/usr/include"
for f in src/ops/*.cpp src/bench/kernels_bench.cpp src/bench/timing.cpp src/bench/gpu_clock.cpp tests/gpu/test_kernels.cpp; do ( $CXX -c $f -o /tmp/o/$(basename $f).o || touch /tmp/o/fail/$(basename $f) ) & done
( $CXX -c .gpu/bench_main.cpp -o /tmp/bench_main.o || touch /tmp/o/fail/bench_main ) &
( $CXX -c .gpu/lin_prof.cpp -o /tmp/lin_prof.o || touch /tmp/o/fail/lin_prof ) &
wait
echo "failed: $(ls /tmp/o/fail)"
LIBS="-L$TP/lib -Wl,-rpath,$TP/lib -Wl,--no-as-needed -ltorch -ltorch_cpu -ltorch_cuda -lc10 -lc10_cuda -Wl,--as-needed -L/usr/local/cuda/lib64 -lcudart -pthread -ldl"
COMMON="$(ls /tmp/o/*.cu.o) $(ls /tmp/o/*.cpp.o | grep -vE 'test_kernels|kernels_bench|timing')"
g++ $COMMON /tmp/o/test_kernels.cpp.o -o /tmp/gt $LIBS /tmp/deps/usr/lib/x86_64-linux-gnu/libgtest.a /tmp/deps/usr/lib/x86_64-linux-gnu/libgtest_main.a && echo GT_OK
g++ /tmp/bench_main.o /tmp/o/kernels_bench.cpp.o /tmp/o/timing.cpp.o $COMMON -o /tmp/kb $LIBS && echo KB_OK
g++ /tmp/lin_prof.o $COMMON -o /tmp/lp $LIBS && echo LP_OK
echo "build $(( $(date +%s) - t0 )) s"
