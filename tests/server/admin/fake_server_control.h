// FakeServerControl: a ServerControl for testing the admin plane in process,
// without the data plane (no listener, no workers, no upperd).
//
// It owns a real ConnectionTable (a memfd, as upperd's), so what the admin
// plane reads (totals, snapshots) is the table's own code; Connect() takes a
// slot the way the listener does, so the connection looks live. SetMode and
// CloseConnection are recorded; draining, the data address and the resource
// limits and the worker stats are settable;
// CloseConnection's answer is derived from the table unless a test fixes it.
//
// Thread-safe: the admin service calls it from gRPC's threads while the test
// reads the recorded calls. Connect() is the table's allocator, so call it
// from one thread at a time (the test's).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/data/connection_table.h"
#include "server/data/server_control.h"

namespace upper {

class FakeServerControl final : public ServerControl {
 public:
  struct CloseCall {
    uint64_t id = 0;
    CloseReason reason = CloseReason::kNone;
  };

  // A table of `capacity` slots whose mode for new connections is `mode`.
  explicit FakeServerControl(uint32_t capacity = 8, Mode mode = Mode::kThread)
      : started_at_(absl::Now() - absl::Seconds(5)) {
    absl::StatusOr<std::unique_ptr<ConnectionTable>> table =
        ConnectionTable::Create(capacity);
    EXPECT_TRUE(table.ok()) << table.status();
    if (!table.ok()) std::abort();  // nothing to test without a table
    table_ = *std::move(table);
    table_->SetMode(mode);
  }

  // A live connection from 127.0.0.1:`port`, served in `mode`, as the
  // listener and its worker leave it (allocated, counted as accepted).
  // Returns its row in the table.
  ConnectionInfo Connect(Mode mode, uint16_t port) {
    sockaddr_in peer = {};
    peer.sin_family = AF_INET;
    peer.sin_port = htons(port);
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const std::optional<uint32_t> slot = table_->Allocate(
        mode, reinterpret_cast<const sockaddr*>(&peer), sizeof(peer));
    EXPECT_TRUE(slot) << "the fake's table is full";
    if (!slot) return ConnectionInfo{};
    table_->Writer(*slot).Claim(getpid(), 0);
    return table_->Read(*slot).value_or(ConnectionInfo{});
  }

  void set_draining(bool draining) { draining_ = draining; }
  void set_data_address(std::string address) {
    std::lock_guard lock(mu_);
    data_address_ = std::move(address);
  }
  // nullopt (the default): CloseConnection is OK iff `id` is live in the
  // table, and then ends it as the data plane's worker would (the slot is
  // released, counted as the reason asked for), else NotFound. A status:
  // that answer, the table untouched, e.g. NotFound for a connection that
  // ended meanwhile, Unavailable for a worker that could not be signalled.
  void set_close_result(std::optional<absl::Status> result) {
    std::lock_guard lock(mu_);
    close_result_ = result;
  }

  void set_resource_limits(const ResourceLimits& limits) {
    std::lock_guard lock(mu_);
    limits_ = limits;
  }

  void set_workers(const ThreadCacheStats& threads,
                   const ForkPoolStats& forks) {
    std::lock_guard lock(mu_);
    thread_workers_ = threads;
    fork_workers_ = forks;
  }

  std::vector<Mode> set_mode_calls() const {
    std::lock_guard lock(mu_);
    return set_mode_calls_;
  }
  std::vector<CloseCall> close_calls() const {
    std::lock_guard lock(mu_);
    return close_calls_;
  }

  // --- ServerControl ---
  ConnectionTable& table() override { return *table_; }
  std::string data_address() const override {
    std::lock_guard lock(mu_);
    return data_address_;
  }
  absl::Time started_at() const override { return started_at_; }
  bool draining() const override { return draining_; }
  ResourceLimits resource_limits() const override {
    std::lock_guard lock(mu_);
    return limits_;
  }
  ThreadCacheStats thread_workers() const override {
    std::lock_guard lock(mu_);
    return thread_workers_;
  }
  ForkPoolStats fork_workers() const override {
    std::lock_guard lock(mu_);
    return fork_workers_;
  }
  Mode SetMode(Mode mode) override {
    std::lock_guard lock(mu_);
    set_mode_calls_.push_back(mode);
    return table_->SetMode(mode);
  }
  absl::StatusOr<ConnectionInfo> CloseConnection(uint64_t id,
                                                 CloseReason reason) override {
    std::lock_guard lock(mu_);
    close_calls_.push_back({id, reason});
    const std::optional<ConnectionInfo> live = table_->Find(id);
    if (close_result_) {
      if (!close_result_->ok()) return *close_result_;
      ConnectionInfo row = live.value_or(ConnectionInfo{});
      row.id = id;
      return row;
    }
    if (!live || table_->RequestClose(live->slot, id, reason) ==
                     CloseRequestResult::kNotFound) {
      return absl::NotFoundError(
          absl::StrCat("no live connection with id ", id));
    }
    table_->Release(live->slot, CloseReason::kError);
    return *live;
  }
  void SetDrainListener(std::function<void()> listener) override {
    std::lock_guard lock(mu_);
    drain_listener_ = std::move(listener);
  }

 private:
  const absl::Time started_at_;
  std::unique_ptr<ConnectionTable> table_;
  std::atomic<bool> draining_ = false;

  mutable std::mutex mu_;
  std::string data_address_ = "127.0.0.1:9999";  // under mu_
  std::optional<absl::Status> close_result_;     // under mu_
  std::vector<Mode> set_mode_calls_;             // under mu_
  std::vector<CloseCall> close_calls_;           // under mu_
  std::function<void()> drain_listener_;         // under mu_
  ResourceLimits limits_;                        // under mu_
  ThreadCacheStats thread_workers_;              // under mu_
  ForkPoolStats fork_workers_;                   // under mu_
};

}  // namespace upper
