#!/usr/bin/env python3
"""scripts/bench_peers.py — the peers of `dysra bench kernels`, same shapes, same timing rules, one card.

Run on the GPU machine beside `dysra bench kernels` (peers installed there from the wheels/sdists we carry):
  python3 scripts/bench_peers.py [--quick] [--runs 20] [--json out.jsonl]
Times (CUDA events, warm-up, median of >= 20 runs, rotated inputs):
  - mamba-ssm selective_scan_fn (CUDA extension), B8 L4096 D2048 N16, bf16 u/delta/z/B/C, fp32 A/D, delta bias +
    softplus, with z: forward and forward+backward;
  - fla-core chunk_linear_attn, B4 H16 D128 bf16, T = 4096 and 16384, normalize False and True: fwd, fwd+bwd;
  - torch: index/gather + SDPA for gathered attention shapes (a) and (b), dense causal SDPA at N = 65,536.
A peer that is not importable is skipped with a message saying why. Prints one JSON object per line.
--graphs adds, for fla and the gathered-attention peers, a row timed on CUDA-graph replays of the same call (one graph
per rotated input set, captured after the warm-up): eager Python calls launch several kernels each, and when launching
takes longer than the GPU work the event times measure the launches, not the kernels. The graph row is the peer's GPU
time; it is the stricter figure to compare a C++ caller against.
Each row also carries the SM clock read through NVML when its timing starts and ends ("sm_mhz"; no thread samples in
between, which could disturb the eager Python rows): the card's power cap lowers the clock under sustained load, so
compare rows taken at the same clock (see bench/RESULTS.md, session 12). --cooldown-ms rests the card before each row.
"""
import argparse
import ctypes
import json
import math
import os
import sys
import time

import torch


class SmClock:
    """The SM clock (MHz) and the NVML reasons holding it down, read at a row's start and end; silent (no fields)
    when NVML cannot be loaded or the device cannot be matched to it."""

    REASONS = ((0x4, "power cap"), (0x20 | 0x40, "thermal"), (0x8, "hardware slowdown"), (0x80, "power brake"),
               (0x10, "sync boost"), (0x100, "display clock"))

    def __init__(self):
        self.lib, self.dev, self.why, self.samples = None, None, "", []
        try:
            lib = ctypes.CDLL("libnvidia-ml.so.1")
            if lib.nvmlInit_v2() != 0:
                raise OSError("nvmlInit_v2 failed")
            dev = ctypes.c_void_p()
            props = torch.cuda.get_device_properties(torch.cuda.current_device())
            if all(hasattr(props, a) for a in ("pci_domain_id", "pci_bus_id", "pci_device_id")):
                bus = f"{props.pci_domain_id:08x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0".encode()
                rc = lib.nvmlDeviceGetHandleByPciBusId_v2(ctypes.c_char_p(bus), ctypes.byref(dev))
            elif torch.cuda.device_count() == 1 and not os.environ.get("CUDA_VISIBLE_DEVICES"):
                rc = lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(0), ctypes.byref(dev))
            else:
                raise OSError("cannot match the CUDA device to an NVML device")
            if rc != 0:
                raise OSError(f"no NVML handle for the device (NVML error {rc})")
            self.lib, self.dev = lib, dev
            self.reasons = getattr(lib, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
                getattr(lib, "nvmlDeviceGetCurrentClocksThrottleReasons", None)
            if self.read() is None:
                raise OSError("NVML cannot read the SM clock")
        except Exception as e:  # noqa: BLE001 (no clock is a missing column, not a failed run)
            self.lib, self.dev, self.why = None, None, f"{type(e).__name__}: {e}"

    def read(self):
        if self.lib is None:
            return None
        mhz, bits = ctypes.c_uint(), ctypes.c_ulonglong()
        if self.lib.nvmlDeviceGetClockInfo(self.dev, ctypes.c_int(1), ctypes.byref(mhz)) != 0:  # NVML_CLOCK_SM
            return None
        if self.reasons is None or self.reasons(self.dev, ctypes.byref(bits)) != 0:
            bits.value = 0
        return mhz.value, bits.value

    def start(self):
        self.samples = [x for x in [self.read()] if x]

    def stop(self):
        """The row's fields: {"sm_mhz_min", "sm_mhz_max", "clock_reasons"} or {} without NVML."""
        self.samples += [x for x in [self.read()] if x]
        if not self.samples:
            return {}
        bits = 0
        for _, b in self.samples:
            bits |= b
        return {"sm_mhz_min": min(m for m, _ in self.samples), "sm_mhz_max": max(m for m, _ in self.samples),
                "clock_reasons": ", ".join(n for m, n in self.REASONS if bits & m)}


CLOCK = None  # SmClock, made in main()
COOLDOWN_MS = 0
LAST_CLOCK = {}  # the fields of the row timed last (timeit fills it, emit writes it)


def timeit(fn, runs, warmup=5):
    global LAST_CLOCK
    if COOLDOWN_MS:
        time.sleep(COOLDOWN_MS / 1000)
    if CLOCK:
        CLOCK.start()
    for i in range(warmup):
        fn(i)
    torch.cuda.synchronize()
    times = []
    for i in range(runs):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn(i)
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    LAST_CLOCK = CLOCK.stop() if CLOCK else {}
    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    return med, times[0]


def timeit_graph(fn, runs, n_sets, warmup=5):
    """Median and min of CUDA-graph replays: graph i % n_sets holds one call fn(i) on input set i (captured after a
    warm-up on a side stream, as torch.cuda.graphs requires)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for i in range(warmup):
            fn(i)
    torch.cuda.current_stream().wait_stream(side)
    graphs = []
    for i in range(n_sets):
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            fn(i)
        graphs.append(g)
    return timeit(lambda i: graphs[i % n_sets].replay(), runs, warmup)


def emit_graph(args, op, shape, impl, pss, fn, n_sets, flops=0.0):
    """With --graphs: the row of fn timed on graph replays (impl + " (CUDA graph)"), or a skip saying why not."""
    if not args.graphs:
        return
    try:
        med, mn = timeit_graph(fn, args.runs, n_sets)
    except Exception as e:  # noqa: BLE001 (a peer that cannot be captured is reported, not fatal)
        return skip(op, impl + " (CUDA graph)", f"{shape} {pss}: capture failed: {type(e).__name__}: {e}")
    emit(args, op, shape, impl + " (CUDA graph)", pss, med, mn, flops)


def emit(args, op, shape, impl, pss, med, mn, flops=0.0, note=""):
    rec = {"op": op, "shape": shape, "impl": impl, "pass": pss, "median_ms": round(med, 5), "min_ms": round(mn, 5),
           "runs": args.runs, "tflops": round(flops / (med * 1e-3) / 1e12, 3) if flops else 0.0,
           "device": torch.cuda.get_device_name(), "torch": torch.__version__, "note": note, **LAST_CLOCK}
    line = json.dumps(rec)
    print(line, flush=True)
    if args.json:
        with open(args.json, "a") as f:
            f.write(line + "\n")


def skip(op, impl, why):
    print(json.dumps({"op": op, "impl": impl, "skipped": why}), flush=True)


def bench_mamba(args):
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception as e:  # noqa: BLE001 — any import failure means the peer is absent
        return skip("selective_scan", "mamba_ssm", f"mamba_ssm not importable: {type(e).__name__}: {e}")
    B, L, D, N = (2, 512, 256, 16) if args.quick else (8, 4096, 2048, 16)
    dev, bf = "cuda", torch.bfloat16
    sets = []
    for _ in range(args.rotate):
        sets.append(dict(u=torch.randn(B, D, L, device=dev, dtype=bf), delta=torch.rand(B, D, L, device=dev, dtype=bf) * 2 - 3,
                         A=-torch.rand(D, N, device=dev) - 0.5, Bm=torch.randn(B, N, L, device=dev, dtype=bf),
                         Cm=torch.randn(B, N, L, device=dev, dtype=bf), Dv=torch.randn(D, device=dev),
                         z=torch.randn(B, D, L, device=dev, dtype=bf), bias=torch.rand(D, device=dev) * 0.5))
    shape = f"B{B} L{L} D{D} N{N} z bf16"

    def fwd(i):
        s = sets[i % len(sets)]
        return selective_scan_fn(s["u"], s["delta"], s["A"], s["Bm"], s["Cm"], s["Dv"], s["z"], s["bias"],
                                 delta_softplus=True)
    with torch.no_grad():
        emit(args, "selective_scan", shape, "mamba_ssm", "fwd", *timeit(fwd, args.runs))
    gsets = [{k: v.detach().requires_grad_(True) for k, v in s.items()} for s in sets]
    g = torch.randn(B, D, L, device=dev, dtype=bf)

    def fb(i):
        s = gsets[i % len(gsets)]
        out = selective_scan_fn(s["u"], s["delta"], s["A"], s["Bm"], s["Cm"], s["Dv"], s["z"], s["bias"],
                                delta_softplus=True)
        torch.autograd.grad(out, list(s.values()), g)
    emit(args, "selective_scan", shape, "mamba_ssm", "fwd+bwd", *timeit(fb, args.runs))


def bench_fla(args):
    try:
        from fla.ops.linear_attn import chunk_linear_attn
    except Exception as e:  # noqa: BLE001
        return skip("linear_attention", "fla", f"fla-core not importable: {type(e).__name__}: {e}")
    B, H, D = 4, (4 if args.quick else 16), 128
    modes = {"both": (False, True), "nonorm": (False,), "norm": (True,)}[args.fla_modes]
    for T in ([512] if args.quick else [4096, 16384]):
        for normalize in modes:
            shape = f"B{B} T{T} H{H} D{D} {'norm' if normalize else 'nonorm'} bf16"
            sets = [[torch.rand(B, T, H, D, device="cuda", dtype=torch.bfloat16) + 0.1,
                     torch.rand(B, T, H, D, device="cuda", dtype=torch.bfloat16) + 0.1,
                     torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16)] for _ in range(args.rotate)]
            flops = 2.0 * B * H * T * (64.0 * D * 2 + 2.0 * D * D)

            def f(s):
                o = chunk_linear_attn(s[0], s[1], s[2], scale=1.0 / math.sqrt(D), normalize=normalize)
                return o[0] if isinstance(o, tuple) else o
            with torch.no_grad():
                emit(args, "linear_attention", shape, "fla", "fwd", *timeit(lambda i: f(sets[i % len(sets)]), args.runs), flops)
                emit_graph(args, "linear_attention", shape, "fla", "fwd", lambda i: f(sets[i % len(sets)]), len(sets), flops)
            gsets = [[t.detach().requires_grad_(True) for t in s] for s in sets]
            g = torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16)

            def fb(i):
                return torch.autograd.grad(f(gsets[i % len(gsets)]), gsets[i % len(gsets)], g)
            emit(args, "linear_attention", shape, "fla", "fwd+bwd", *timeit(fb, args.runs), 3 * flops)
            emit_graph(args, "linear_attention", shape, "fla", "fwd+bwd", fb, len(gsets), 3 * flops)


def bench_sdpa(args):
    import torch.nn.functional as F
    B, H, D = 1, 16, 128
    K, N = (256, 4096) if args.quick else (2048, 65536)
    bf = torch.bfloat16
    for name, tq, bq in (("a", 512 if args.quick else 4096, 512 if args.quick else 4096), ("b", N, 64)):
        nb = tq // bq
        shape = f"({name}) Tq{tq} N{N} K{K} bq{bq} H{H} D{D}"
        sets = []
        for _ in range(2 if tq >= 65536 else args.rotate):
            idx = torch.rand(B, H, nb, N, device="cuda").topk(K, -1).indices.sort(-1).values
            sets.append((torch.randn(B, tq, H, D, device="cuda", dtype=bf), torch.randn(B, N, H, D, device="cuda", dtype=bf),
                         torch.randn(B, N, H, D, device="cuda", dtype=bf), idx))

        def f(s):
            q, k, v, idx = s
            ix = idx.reshape(B, H, nb * K, 1).expand(B, H, nb * K, D)
            kg = torch.gather(k.permute(0, 2, 1, 3), 2, ix).view(B, H, nb, K, D).permute(0, 2, 1, 3, 4).reshape(B * nb, H, K, D)
            vg = torch.gather(v.permute(0, 2, 1, 3), 2, ix).view(B, H, nb, K, D).permute(0, 2, 1, 3, 4).reshape(B * nb, H, K, D)
            qb = q.view(B, nb, bq, H, D).permute(0, 1, 3, 2, 4).reshape(B * nb, H, bq, D)
            return F.scaled_dot_product_attention(qb, kg, vg)
        flops = 4.0 * B * H * tq * K * D
        with torch.no_grad():
            emit(args, "gathered_attention", shape, "gather+sdpa", "fwd", *timeit(lambda i: f(sets[i % len(sets)]), args.runs), flops)
            emit_graph(args, "gathered_attention", shape, "gather+sdpa", "fwd", lambda i: f(sets[i % len(sets)]), len(sets), flops)
            s0 = sets[0]
            ix = s0[3].reshape(B, H, nb * K, 1).expand(B, H, nb * K, D)
            kg = torch.gather(s0[1].permute(0, 2, 1, 3), 2, ix).view(B, H, nb, K, D).permute(0, 2, 1, 3, 4).reshape(B * nb, H, K, D).contiguous()
            qb = s0[0].view(B, nb, bq, H, D).permute(0, 1, 3, 2, 4).reshape(B * nb, H, bq, D).contiguous()
            emit(args, "gathered_attention", shape, "sdpa_only(pre-gathered)", "fwd",
                 *timeit(lambda i: F.scaled_dot_product_attention(qb, kg, kg), args.runs), flops)
        if name == "b":
            q = torch.randn(B, H, N, D, device="cuda", dtype=bf)
            with torch.no_grad():
                emit(args, "gathered_attention", shape, "dense_causal_sdpa", "fwd",
                     *timeit(lambda i: F.scaled_dot_product_attention(q, q, q, is_causal=True), args.runs, 2),
                     2.0 * B * H * N * N * D, "FLOPs 2·B·H·N²·D (causal)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small shapes (harness smoke test)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--rotate", type=int, default=3)
    ap.add_argument("--json", default="", help="append JSON lines to this file")
    ap.add_argument("--only", default="mamba,fla,sdpa")
    ap.add_argument("--fla-modes", default="both", choices=["both", "nonorm", "norm"],
                    help="fla rows: with and/or without the normaliser (Triton autotunes each shape: ~20-40 s)")
    ap.add_argument("--graphs", action="store_true",
                    help="also time fla and the gathered-attention peers on CUDA-graph replays (their GPU time)")
    ap.add_argument("--cooldown-ms", type=int, default=0,
                    help="idle the card this long before each row, so that rows start at the same SM clock")
    args = ap.parse_args()
    if args.cooldown_ms < 0:
        print("bench_peers: --cooldown-ms must be >= 0", file=sys.stderr)
        return 2
    if args.runs < 20 and not args.quick:
        print("bench_peers: --runs must be >= 20 for a measurement", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("bench_peers: no CUDA device", file=sys.stderr)
        return 2
    global CLOCK, COOLDOWN_MS
    CLOCK, COOLDOWN_MS = SmClock(), args.cooldown_ms
    if CLOCK.lib is None:
        print(f"bench_peers: SM clock not read ({CLOCK.why})", file=sys.stderr)
        CLOCK = None
    for name, fn in (("mamba", bench_mamba), ("fla", bench_fla), ("sdpa", bench_sdpa)):
        if name in args.only.split(","):
            fn(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
