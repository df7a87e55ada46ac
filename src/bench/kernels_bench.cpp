// src/bench/kernels_bench.cpp — `dysra bench kernels` (see kernels_bench.h).
//
// Each case times dysra's CUDA kernel (through the public op, so the glue's validation and allocations are
// included) and the LibTorch-op path of the same op on the same card in the same run:
//   selective scan     — mamba-ssm's selective_scan_ref formulation (materialised exp(ΔA), sequential over L)
//   linear attention   — the chunked form in torch ops (bmm within chunks, cumsum of per-chunk k vᵀ across chunks)
//   gathered attention — torch::gather of the listed rows + at::scaled_dot_product_attention (and, for context,
//                        dense causal SDPA over the whole memory for shape (b))
// Timing: CUDA events on the current stream, `warmup` untimed runs, median (and min) of `runs` timed runs,
// input sets rotated between runs; with --graphs each dysra/torch row gets a "(CUDA graph)" twin timed on graph
// replays (one graph per input set), the GPU time without launch overhead, as bench_peers.py --graphs times fla.
// Forward+backward runs use torch::autograd::grad (no accumulation).
// Every row also reports the SM clock it ran at (NVML, sampled while it is timed; see gpu_clock.h): under sustained
// load the card's power cap lowers the clock and the rows that come later run slower, so compare rows at one clock;
// --cooldown-ms rests the card before each row.
#include "bench/kernels_bench.h"
#include "bench/gpu_clock.h"
#include "bench/timing.h"

#include "dysra/ops/backend.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <torch/torch.h>

#include "dysra/ops/gathered_attention.h"
#include "dysra/ops/linear_attention.h"
#include "dysra/ops/selective_scan.h"

#ifdef DYSRA_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

namespace dysra::bench {

#ifndef DYSRA_WITH_CUDA
int run_kernel_bench(const KernelBenchOptions&) {
  std::fprintf(stderr, "dysra bench kernels: dysra was built without CUDA (DYSRA_WITH_CUDA off)\n");
  return 2;
}
#else
namespace {

using torch::Tensor;

struct Reporter {
  std::string device, json_path;
  FILE* json = nullptr;
  int cooldown_ms = 0;
  std::unique_ptr<ClockMonitor> clock;
  Reporter(const std::string& path, int cooldown) : json_path(path), cooldown_ms(cooldown) {
    cudaDeviceProp prop{};
    int dev = 0;
    cudaGetDevice(&dev);
    cudaGetDeviceProperties(&prop, dev);
    device = prop.name;
    char bus[32] = {0};
    cudaDeviceGetPCIBusId(bus, sizeof bus, dev);
    clock = std::make_unique<ClockMonitor>(bus);
    if (!path.empty()) json = std::fopen(path.c_str(), "a");
    std::printf("device: %s", device.c_str());
    if (!clock->available()) std::printf(" (SM clock not read: %s)", clock->unavailable_reason().c_str());
    std::printf("\n%-20s %-34s %-18s %-8s %10s %10s %10s %10s  %s\n", "op", "shape", "impl", "pass", "median_ms",
                "min_ms", "TFLOP/s", "TB/s", "SM clock while timed");
  }
  ~Reporter() {
    if (json) std::fclose(json);
  }
  /// Times one row (after the cooldown, if any) with the SM clock sampled meanwhile, and reports it.
  void row(const std::string& op, const std::string& shape, const std::string& impl, const std::string& pass,
           const std::function<Timing()>& time, double flops, double bytes, const std::string& note = "") {
    if (cooldown_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(cooldown_ms));
    clock->start();
    const Timing t = time();
    const ClockStats c = clock->stop();
    const double tf = flops > 0 ? flops / (t.median_ms * 1e-3) / 1e12 : 0;
    const double tb = bytes > 0 ? bytes / (t.median_ms * 1e-3) / 1e12 : 0;
    const std::string clk = format_clock(c);
    std::printf("%-20s %-34s %-18s %-8s %10.4f %10.4f %10.2f %10.3f  %s%s%s\n", op.c_str(), shape.c_str(), impl.c_str(),
                pass.c_str(), t.median_ms, t.min_ms, tf, tb, clk.c_str(), clk.empty() || note.empty() ? "" : "; ",
                note.c_str());
    std::fflush(stdout);
    if (json) {
      std::fprintf(json,
                   "{\"op\":\"%s\",\"shape\":\"%s\",\"impl\":\"%s\",\"pass\":\"%s\",\"median_ms\":%.5f,"
                   "\"min_ms\":%.5f,\"runs\":%d,\"flops\":%.6g,\"bytes\":%.6g,\"tflops\":%.3f,\"tbps\":%.4f,"
                   "\"device\":\"%s\",\"note\":\"%s\"",
                   op.c_str(), shape.c_str(), impl.c_str(), pass.c_str(), t.median_ms, t.min_ms, t.runs, flops,
                   bytes, tf, tb, device.c_str(), note.c_str());
      if (c.valid)
        std::fprintf(json, ",\"sm_mhz_mean\":%.0f,\"sm_mhz_min\":%u,\"sm_mhz_max\":%u,\"clock_reasons\":\"%s\"",
                     c.mean_mhz, c.min_mhz, c.max_mhz, describe_clock_reasons(c.reasons).c_str());
      std::fprintf(json, "}\n");
      std::fflush(json);
    }
  }
  void skip(const std::string& op, const std::string& shape, const std::string& impl, const std::string& why) {
    std::printf("%-20s %-34s %-18s skipped: %s\n", op.c_str(), shape.c_str(), impl.c_str(), why.c_str());
  }
};

/// The eager row of f and, with --graphs, its "(CUDA graph)" row (or a skip saying why it could not be captured).
void rows(Reporter& rep, const KernelBenchOptions& o, const std::string& op, const std::string& shape,
          const std::string& impl, const std::string& pass, const std::function<void(int)>& f, int n_sets,
          double flops, double bytes) {
  rep.row(op, shape, impl, pass, [&] { return time_cuda(f, o.warmup, o.runs); }, flops, bytes);
  if (!o.graphs) return;
  try {
    rep.row(op, shape, impl + " (CUDA graph)", pass, [&] { return time_cuda_graph(f, n_sets, o.warmup, o.runs); },
            flops, bytes);
  } catch (const std::exception& e) {
    // (a failed capture leaves torch's CUDA generator marked as capturing, so the run cannot go on: stop with the
    // reason instead of failing at the next random tensor)
    std::string why = e.what();
    why = why.substr(0, why.find('\n'));
    rep.skip(op, shape, impl + " (CUDA graph)", pass + ": capture failed: " + why);
    throw std::runtime_error("dysra bench kernels --graphs: capturing " + op + " " + impl + " " + pass +
                             " failed (" + why + "); a call with a host sync cannot be timed as a CUDA graph: run "
                             "without --graphs");
  }
}

std::vector<Tensor> inputs_of(const std::vector<std::vector<Tensor>>& sets, int i) { return sets[i % sets.size()]; }

void grads_of(const std::vector<Tensor>& outs, const std::vector<Tensor>& ins, const std::vector<Tensor>& gouts) {
  torch::autograd::grad(outs, ins, gouts, /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
}

// ------------------------------------------------------------------------------------------ selective scan
// mamba-ssm's selective_scan_ref in torch ops (materialises exp(ΔA) and ΔuB as [B, D, L, N] fp32).
Tensor scan_torch_ref(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                      const Tensor& D, const Tensor& z, const Tensor& bias) {
  auto dt = torch::softplus(delta.to(torch::kFloat32) + bias.view({1, -1, 1}));
  auto dA = torch::exp(dt.unsqueeze(-1) * A.view({1, A.size(0), 1, A.size(1)}));
  auto dBu = (dt * u.to(torch::kFloat32)).unsqueeze(-1) * B.to(torch::kFloat32).transpose(1, 2).unsqueeze(1);
  auto Cf = C.to(torch::kFloat32);
  auto x = torch::zeros({u.size(0), u.size(1), A.size(1)}, dA.options());
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < u.size(2); ++t) {
    x = dA.select(2, t) * x + dBu.select(2, t);
    ys.push_back(torch::einsum("bdn,bn->bd", {x, Cf.select(2, t)}));
  }
  auto y = torch::stack(ys, 2) + u.to(torch::kFloat32) * D.view({1, -1, 1});
  return (y * torch::silu(z.to(torch::kFloat32))).to(u.scalar_type());
}

void bench_scan(Reporter& rep, const KernelBenchOptions& o) {
  const int64_t Bn = o.quick ? 2 : 8, L = o.quick ? 512 : 4096, D = o.quick ? 256 : 2048, N = 16;
  const auto bf = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  const auto f32 = bf.dtype(torch::kFloat32);
  std::ostringstream sh;
  sh << "B" << Bn << " L" << L << " D" << D << " N" << N << " z bf16";
  std::vector<std::vector<Tensor>> sets;
  for (int r = 0; r < o.rotate; ++r)
    sets.push_back({torch::randn({Bn, D, L}, bf), (torch::rand({Bn, D, L}, bf) * 2 - 3), -torch::rand({D, N}, f32) - 0.5,
                    torch::randn({Bn, N, L}, bf), torch::randn({Bn, N, L}, bf), torch::randn({D}, f32),
                    torch::randn({Bn, D, L}, bf), torch::rand({D}, f32) * 0.5});
  // bytes the forward must move (u, delta, z read; out written; B, C read) and the exp count
  const double bytes_fwd = double(Bn * D * L) * 2 * 4 + double(Bn * N * L) * 2 * 2;
  auto run = [&](const std::vector<Tensor>& s) {
    return ops::selective_scan(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]).out;
  };
  torch::NoGradGuard ng;
  rows(rep, o, "selective_scan", sh.str(), "dysra", "fwd", [&](int i) { run(inputs_of(sets, i)); }, int(sets.size()), 0,
       bytes_fwd);
  if (o.backward) {
    torch::AutoGradMode on(true);
    std::vector<std::vector<Tensor>> gsets;
    for (auto& s : sets) {
      std::vector<Tensor> g;
      for (auto& t : s) g.push_back(t.detach().requires_grad_(true));
      gsets.push_back(g);
    }
    auto gout = torch::randn({Bn, D, L}, bf);
    rows(rep, o, "selective_scan", sh.str(), "dysra", "fwd+bwd",
         [&](int i) {
           auto s = inputs_of(gsets, i);
           grads_of({run(s)}, s, {gout});
         },
         int(gsets.size()), 0, 0);
  }
  if (!o.peers) return;
  rep.row("selective_scan", sh.str(), "torch_ref_seq", "fwd",
          [&] {
            return time_cuda([&](int i) {
              auto s = inputs_of(sets, i);
              scan_torch_ref(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
            }, 1, o.runs);
          },
          0, bytes_fwd, "mamba selective_scan_ref in torch ops");
  if (o.backward) rep.skip("selective_scan", sh.str(), "torch_ref_seq", "fwd+bwd: autograd over L sequential steps (tens of GB of saved state)");
}

// ---------------------------------------------------------------------------------------- linear attention
// chunked causal linear attention in torch ops (chunk 64), [B, T, H, D] in, same semantics as dysra's op.
Tensor lin_torch_chunked(const Tensor& q, const Tensor& k, const Tensor& v, bool normalize, double scale, double eps) {
  const int64_t Bn = q.size(0), T = q.size(1), H = q.size(2), C = 64, nc = T / C;
  auto r = [&](const Tensor& x) { return x.to(torch::kFloat32).view({Bn, nc, C, H, x.size(3)}).permute({0, 3, 1, 2, 4}); };
  auto qc = r(q), kc = r(k), vc = r(v);                                        // [B, H, nc, C, D]
  auto mask = torch::ones({C, C}, q.options().dtype(torch::kBool)).tril();
  auto A = torch::matmul(qc, kc.transpose(-1, -2)).masked_fill(mask.logical_not(), 0);
  auto kv = torch::matmul(kc.transpose(-1, -2), vc);                          // [B, H, nc, D, Dv]
  auto S = torch::cumsum(kv, 2) - kv;
  auto num = torch::matmul(A, vc) + torch::matmul(qc, S);
  Tensor out;
  if (normalize) {
    auto ks = kc.sum(3, true);                                                // [B, H, nc, 1, D]
    auto zc = torch::cumsum(ks, 2) - ks;
    auto den = A.sum(-1, true) + (qc * zc).sum(-1, true) + eps;
    out = num / den;
  } else {
    out = num * scale;
  }
  return out.permute({0, 2, 3, 1, 4}).reshape({Bn, T, H, v.size(3)}).to(q.scalar_type());
}

void bench_lin(Reporter& rep, const KernelBenchOptions& o) {
  const int64_t Bn = 4, H = o.quick ? 4 : 16, D = 128;
  const auto bf = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  for (int64_t T : o.quick ? std::vector<int64_t>{512} : std::vector<int64_t>{4096, 16384}) {
    for (bool normalize : {false, true}) {
      std::ostringstream sh;
      sh << "B" << Bn << " T" << T << " H" << H << " D" << D << (normalize ? " norm" : " nonorm") << " bf16";
      std::vector<std::vector<Tensor>> sets;
      for (int r = 0; r < o.rotate; ++r)
        sets.push_back({torch::rand({Bn, T, H, D}, bf) + 0.1, torch::rand({Bn, T, H, D}, bf) + 0.1,
                        torch::randn({Bn, T, H, D}, bf)});
      ops::LinearAttentionOptions lo;
      lo.normalize = normalize;
      lo.scale = 1.0 / std::sqrt(double(D));
      const double bytes = double(Bn * T * H * D) * 2 * 4;
      const double flops = 2.0 * Bn * H * T * (64.0 * D * 2 + 2.0 * D * D);  // intra-chunk QKᵀ, AV + QS, KᵀV
      for (int impl = 0; impl < (o.peers ? 2 : 1); ++impl) {
        auto f = [&](const std::vector<Tensor>& s) {
          return impl == 0 ? ops::linear_attention(s[0], s[1], s[2], {}, lo).out
                           : lin_torch_chunked(s[0], s[1], s[2], normalize, lo.scale, lo.eps);
        };
        const std::string name = impl == 0 ? "dysra" : "torch_chunked";
        {
          torch::NoGradGuard ng;
          rows(rep, o, "linear_attention", sh.str(), name, "fwd", [&](int i) { f(inputs_of(sets, i)); },
               int(sets.size()), flops, bytes);
        }
        if (o.backward) {
          std::vector<std::vector<Tensor>> gsets;
          for (auto& s : sets) {
            std::vector<Tensor> g;
            for (auto& t : s) g.push_back(t.detach().requires_grad_(true));
            gsets.push_back(g);
          }
          auto gout = torch::randn({Bn, T, H, D}, bf);
          rows(rep, o, "linear_attention", sh.str(), name, "fwd+bwd",
               [&](int i) {
                 auto s = inputs_of(gsets, i);
                 grads_of({f(s)}, s, {gout});
               },
               int(gsets.size()), 3 * flops, 0);
        }
      }
    }
  }
}

// -------------------------------------------------------------------------------------- gathered attention
Tensor gather_sdpa(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& idx, int64_t bq) {
  // q [B, Tq, H, D]; k, v [B, N, Hkv, D]; idx [B, Hkv, nb, K] → gathered [B, Hkv, nb, K, D]
  const int64_t Bn = q.size(0), Tq = q.size(1), H = q.size(2), D = q.size(3), Hkv = k.size(2);
  const int64_t nb = idx.size(2), K = idx.size(3);
  auto g = [&](const Tensor& x) {
    auto ix = idx.reshape({Bn, Hkv, nb * K, 1}).expand({Bn, Hkv, nb * K, D});
    return torch::gather(x.permute({0, 2, 1, 3}), 2, ix).view({Bn, Hkv, nb, K, D});
  };
  auto kg = g(k).permute({0, 2, 1, 3, 4}).reshape({Bn * nb, Hkv, K, D});
  auto vg = g(v).permute({0, 2, 1, 3, 4}).reshape({Bn * nb, Hkv, K, D});
  auto qb = q.view({Bn, nb, bq, H, D}).permute({0, 1, 3, 2, 4}).reshape({Bn * nb, H, bq, D});
  auto o = at::scaled_dot_product_attention(qb, kg, vg, {}, 0.0, false, std::nullopt, H != Hkv);
  return o.view({Bn, nb, H, bq, D}).permute({0, 1, 3, 2, 4}).reshape({Bn, Tq, H, D});
}

void bench_gather(Reporter& rep, const KernelBenchOptions& o) {
  const int64_t Bn = 1, H = 16, D = 128, K = o.quick ? 256 : 2048, N = o.quick ? 4096 : 65536;
  const auto bf = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  struct Case {
    const char* name;
    int64_t tq, bq;
    bool backward;
  };
  std::vector<Case> cases{{"a", o.quick ? 512 : 4096, o.quick ? 512 : 4096, true}, {"b", N, 64, false}};
  for (const auto& c : cases) {
    std::ostringstream sh;
    sh << "(" << c.name << ") Tq" << c.tq << " N" << N << " K" << K << " bq" << c.bq << " H" << H << " D" << D;
    const int64_t nb = c.tq / c.bq;
    std::vector<std::vector<Tensor>> sets;
    const int rot = c.tq >= 65536 ? 2 : o.rotate;
    for (int r = 0; r < rot; ++r) {
      // distinct sorted rows per list (top-k style), memory [B, N, H, D]
      auto idx = std::get<1>(torch::rand({Bn, H, nb, N}, bf.dtype(torch::kFloat32)).topk(K, -1));
      sets.push_back({torch::randn({Bn, c.tq, H, D}, bf), torch::randn({Bn, N, H, D}, bf),
                      torch::randn({Bn, N, H, D}, bf), std::get<0>(idx.sort(-1))});
    }
    const double flops = 4.0 * Bn * H * c.tq * K * D;
    ops::GatheredAttentionOptions go;
    go.block_q = c.bq;
    go.check_indices = false;  // topk indices, in range by construction (the check is a device sync per call)
    for (int impl = 0; impl < (o.peers ? 2 : 1); ++impl) {
      auto f = [&](const std::vector<Tensor>& s) {
        return impl == 0 ? ops::gathered_attention(s[0], s[1], s[2], s[3], go).out
                         : gather_sdpa(s[0], s[1], s[2], s[3], c.bq);
      };
      const std::string name = impl == 0 ? "dysra" : "gather+sdpa";
      {
        torch::NoGradGuard ng;
        rows(rep, o, "gathered_attention", sh.str(), name, "fwd", [&](int i) { f(inputs_of(sets, i)); },
             int(sets.size()), flops, 0);
      }
      if (o.backward && c.backward) {
        std::vector<std::vector<Tensor>> gsets;
        for (auto& s : sets)
          gsets.push_back({s[0].detach().requires_grad_(true), s[1].detach().requires_grad_(true),
                           s[2].detach().requires_grad_(true), s[3]});
        auto gout = torch::randn({Bn, c.tq, H, D}, bf);
        rows(rep, o, "gathered_attention", sh.str(), name, "fwd+bwd",
             [&](int i) {
               auto s = inputs_of(gsets, i);
               grads_of({f(s)}, {s[0], s[1], s[2]}, {gout});
             },
             int(gsets.size()), 3.5 * flops, 0);
      }
    }
    if (o.peers && std::string(c.name) == "b") {  // context: dense causal attention over the whole memory
      torch::NoGradGuard ng;
      auto q = torch::randn({Bn, H, N, D}, bf), k = torch::randn({Bn, H, N, D}, bf), v = torch::randn({Bn, H, N, D}, bf);
      rep.row("gathered_attention", sh.str(), "dense_causal_sdpa", "fwd",
              [&] {
                return time_cuda([&](int) { at::scaled_dot_product_attention(q, k, v, {}, 0.0, true); }, 2, o.runs);
              },
              2.0 * Bn * H * double(N) * N * D, 0, "FLOPs 2·B·H·N²·D (causal)");
    }
  }
  // the card's measured bf16 matmul peak, to state fractions against
  torch::NoGradGuard ng;
  auto a = torch::randn({8192, 8192}, bf), b = torch::randn({8192, 8192}, bf);
  rep.row("peak", "bf16 matmul 8192^3", "torch.mm", "fwd",
          [&] { return time_cuda([&](int) { torch::mm(a, b); }, 3, o.runs); },
          2.0 * 8192.0 * 8192.0 * 8192.0, 0);
  auto big = torch::empty({int64_t(1) << 30}, bf), dst = torch::empty_like(big);
  rep.row("peak", "copy 2 GiB", "copy_", "fwd", [&] { return time_cuda([&](int) { dst.copy_(big); }, 3, o.runs); }, 0,
          2.0 * big.numel() * 2);
}

bool wants(const std::string& list, const std::string& op) {
  return list == "all" || ("," + list + ",").find("," + op + ",") != std::string::npos;
}

}  // namespace

int run_kernel_bench(const KernelBenchOptions& o) {
  ops::set_cuda_backend(ops::CudaBackend::kKernels);  // "dysra" rows time the kernels; peers call torch directly
  if (!torch::cuda::is_available()) {
    std::fprintf(stderr, "dysra bench kernels: no CUDA device\n");
    return 2;
  }
  Reporter rep(o.json_path, o.cooldown_ms);
  if (wants(o.ops, "selective_scan")) bench_scan(rep, o);
  if (wants(o.ops, "linear_attention")) bench_lin(rep, o);
  if (wants(o.ops, "gathered_attention")) bench_gather(rep, o);
  return 0;
}
#endif  // DYSRA_WITH_CUDA

}  // namespace dysra::bench
