// The dysra CLI end to end: exit codes, error messages, `config`, and Ctrl-C → checkpoint → exit 130.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "test_util.h"

namespace fs = std::filesystem;

namespace {

struct Result {
  int code;
  std::string out;
};

Result run(const std::string& args) {
  const std::string cmd = std::string(DYSRA_CLI_PATH) + " " + args + " 2>&1";
  Result r{-1, ""};
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

const char* kTiny =
    "name: tiny\nseed: 3\ndevice: cpu\nmodel: {d_model: 16, n_layers: 1}\n"
    "data: {task: mqar, mqar: {vocab_size: 64, seq_len: 32, num_kv_pairs: 2, train_examples: 64, eval_examples: 16}}\n"
    "train: {steps: 100000, batch_size: 8, checkpoint_every: 0, threads: 1}\n"
    "eval: {every: 0}\nlog: {every: 1000, progress: lines, level: warn}\n";

// Starts `dysra train CFG --run-dir RUN_DIR` in a child process and returns once training is under way
// (config.yaml is written just before the first step).
pid_t start_training(const std::string& cfg, const std::string& run_dir) {
  pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    execl(DYSRA_CLI_PATH, DYSRA_CLI_PATH, "train", cfg.c_str(), "--run-dir", run_dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; pid > 0 && i < 600 && !fs::exists(fs::path(run_dir) / "config.yaml"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  return pid;
}

}  // namespace

TEST(Cli, BadConfigExitsTwoWithFileLineAndKey) {
  dysra::test::TempDir dir;
  auto cfg = dir.file("bad.yaml", "train:\n  lr: fast\n");
  auto r = run("config " + cfg);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find(cfg + ":2: train.lr: expected a number, got \"fast\""), std::string::npos) << r.out;
}

TEST(Cli, UnknownFlagAndMissingFileExitTwo) {
  EXPECT_EQ(run("train --no-such-flag").code, 2);
  auto r = run("train /nonexistent/x.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("/nonexistent/x.yaml: config file not found"), std::string::npos) << r.out;
  auto s = run("config /nonexistent/x.yaml --set model.d_model");
  EXPECT_EQ(s.code, 2);
}

TEST(Cli, BenchKernelsRejectsANegativeCooldown) {
  auto r = run("bench kernels --cooldown-ms -5");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--cooldown-ms"), std::string::npos) << r.out;
}

TEST(Cli, ConfigPrintsResolvedYamlWithOverrides) {
  dysra::test::TempDir dir;
  auto cfg = dir.file("t.yaml", kTiny);
  auto r = run("config " + cfg + " --set model.d_model=24");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("d_model: 24"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("num_kv_pairs: 2"), std::string::npos) << r.out;
}

TEST(Cli, StreamRunTakesCacheAndStreamSectionsAndFlagsWin) {
  dysra::test::TempDir dir;
  auto cfg = dir.file("s.yaml",
                      "model: {d_model: 32, n_layers: 1, n_heads: 2}\n"
                      "cache: {policy: window, budget: 300}\n"
                      "stream: {tokens: 5000, question_interval: 256, distances: [100], report_every: 500}\n");
  const std::string out = dir.path("run");
  auto r = run("stream run " + cfg + " --run-dir " + out + " --tokens 700 --set cache.budget=320");
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream in(fs::path(out) / "stream_config.json");
  std::string js((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(js.find("\"policy\": \"window\""), std::string::npos) << js;       // from the YAML
  EXPECT_NE(js.find("\"budget\": 320"), std::string::npos) << js;               // --set over the YAML
  EXPECT_NE(js.find("\"total_tokens\": 700"), std::string::npos) << js;         // a flag over the YAML
  EXPECT_NE(js.find("\"question_interval\": 256"), std::string::npos) << js;    // from the YAML
  auto bad = run("stream run " + dir.file("b.yaml", "cache:\n  policy: lru\n") + " --run-dir " + dir.path("b"));
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("b.yaml:2: cache.policy: unknown value \"lru\""), std::string::npos) << bad.out;
}

TEST(Cli, InterruptWritesACheckpointAndExits130) {
  dysra::test::TempDir dir;
  auto cfg = dir.file("t.yaml", kTiny);
  const std::string run_dir = dir.path("run");
  pid_t pid = start_training(cfg, run_dir);
  ASSERT_GT(pid, 0);
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_TRUE(fs::exists(fs::path(run_dir) / "checkpoints" / "latest"));
  EXPECT_TRUE(fs::exists(fs::path(run_dir) / "summary.json"));
  // and the run resumes from it
  auto r = run("train " + cfg + " --run-dir " + run_dir + " --resume --set train.steps=1");
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST(Cli, SignalBurstFromTimeoutCountsAsOneInterrupt) {
  // coreutils `timeout` signals the command and then its whole process group: two SIGTERMs at once. The run
  // must still stop cleanly with a checkpoint and a summary (it used to die on the second one).
  dysra::test::TempDir dir;
  auto cfg = dir.file("t.yaml", kTiny);
  const std::string run_dir = dir.path("run");
  pid_t pid = start_training(cfg, run_dir);
  ASSERT_GT(pid, 0);
  for (int i = 0; i < 3; ++i) {  // delivered one by one (not merged while pending), all inside one second
    kill(pid, SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_TRUE(fs::exists(fs::path(run_dir) / "checkpoints" / "latest"));
  EXPECT_TRUE(fs::exists(fs::path(run_dir) / "summary.json"));
}

TEST(Cli, InitFromStartsFromAnotherRunsWeights) {
  dysra::test::TempDir dir;
  auto cfg = dir.file("t.yaml", kTiny);
  const std::string a = dir.path("a"), b = dir.path("b"), c = dir.path("c");
  auto ra = run("train " + cfg + " --run-dir " + a + " --set train.steps=300 --set train.lr=0.01");
  ASSERT_EQ(ra.code, 0) << ra.out;
  auto loss = [](const std::string& run_dir) {
    std::ifstream in(fs::path(run_dir) / "summary.json");
    std::string s((std::istreambuf_iterator<char>(in)), {});
    const auto k = s.find("\"train_loss\":");
    return k == std::string::npos ? -1.0 : std::stod(s.substr(k + 13));
  };
  auto rb = run("train " + cfg + " --run-dir " + b + " --set train.steps=1 --set train.init_from=" + a);
  ASSERT_EQ(rb.code, 0) << rb.out;
  auto rc = run("train " + cfg + " --run-dir " + c + " --set train.steps=1");
  ASSERT_EQ(rc.code, 0) << rc.out;
  EXPECT_LT(loss(b), loss(c) - 0.2) << "step 1 from trained weights vs from scratch";
  // a checkpoint file, the checkpoints folder and its `latest` pointer name the same weights
  for (const std::string from : {a + "/checkpoints/latest", a + "/checkpoints"}) {
    auto r = run("train " + cfg + " --run-dir " + dir.path("e" + std::to_string(from.size())) +
                 " --set train.steps=1 --set train.init_from=" + from);
    EXPECT_EQ(r.code, 0) << from << "\n" << r.out;
  }
  auto bad = run("train " + cfg + " --run-dir " + dir.path("d") + " --set train.init_from=" + dir.path("nope"));
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("train.init_from"), std::string::npos) << bad.out;
}
