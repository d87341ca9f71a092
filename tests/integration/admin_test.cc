// The admin API against a real upperd, in both modes, with the generated C++
// stub: GetStatus and ListConnections report exactly the open connections
// (peers, bytes, worker pids), CloseConnection ends the right one, SetMode
// under load loses nothing, WatchStatus streams and ends with the drain.
// Every figure is compared with what the test's own sockets did.
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"

namespace upper::testing {
namespace {

using admin::v1::AdminService;
using admin::v1::Connection;
using admin::v1::ServerStatus;

// An upperd and a stub for its admin port.
struct Admined {
  std::unique_ptr<UpperdProcess> upperd;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<AdminService::Stub> stub;
};

Admined StartAdmined(std::vector<std::string> args) {
  Admined a;
  absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
      UpperdProcess::Start({.args = std::move(args)});
  EXPECT_TRUE(upperd.ok()) << upperd.status();
  if (!upperd.ok()) return a;
  a.upperd = *std::move(upperd);
  absl::StatusOr<uint16_t> port = a.upperd->Port("admin");
  EXPECT_TRUE(port.ok()) << port.status() << "\n" << a.upperd->Log();
  if (!port.ok()) return a;
  a.channel = AdminChannel(*port);
  a.stub = AdminService::NewStub(a.channel);
  return a;
}

// Sends `data` and reads the upper-cased copy back on an open connection.
void Echo(int fd, const std::string& data) {
  ASSERT_EQ(send(fd, data.data(), data.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(data.size()));
  absl::StatusOr<std::string> reply =
      ReadExactly(fd, data.size(), absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_TRUE(*reply == ExpectedUpper(data));
}

class AdminTest : public ::testing::TestWithParam<std::string> {
 protected:
  Admined Start(std::vector<std::string> args = {}) {
    args.push_back(absl::StrCat("--mode=", GetParam()));
    return StartAdmined(std::move(args));
  }
  bool fork_mode() const { return GetParam() == "fork"; }
  admin::v1::Mode mode() const {
    return fork_mode() ? admin::v1::MODE_FORK : admin::v1::MODE_THREAD;
  }
  admin::v1::Mode other_mode() const {
    return fork_mode() ? admin::v1::MODE_THREAD : admin::v1::MODE_FORK;
  }
};

TEST_P(AdminTest, StatusAndListingReportExactlyTheOpenConnections) {
  Admined a = Start();
  ASSERT_NE(a.stub, nullptr);
  constexpr int kClients = 6;
  std::vector<UniqueFd> clients;
  std::map<uint32_t, size_t> sent_by_port;  // client port -> bytes sent
  uint64_t sent_total = 0;
  for (int i = 0; i < kClients; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(a.upperd->data_port());
    ASSERT_TRUE(fd.ok()) << fd.status();
    const std::string data = RandomPayload(1000 * (i + 1) + i, i);
    Echo(fd->get(), data);
    sent_by_port[LocalPort(fd->get())] = data.size();
    sent_total += data.size();
    clients.push_back(*std::move(fd));
  }

  const ServerStatus status = StatusWhen(*a.stub, [&](const ServerStatus& s) {
    return s.sent_bytes_total() == sent_total;
  });
  EXPECT_EQ(status.mode(), mode());
  EXPECT_EQ(status.active_connections(), kClients);
  EXPECT_EQ(PerMode(status, mode()).active_connections(), kClients);
  EXPECT_EQ(PerMode(status, mode()).accepted_total(), kClients);
  EXPECT_EQ(PerMode(status, other_mode()).active_connections(), 0u);
  EXPECT_EQ(status.accepted_total(), kClients);
  EXPECT_EQ(status.received_bytes_total(), sent_total);
  EXPECT_EQ(status.sent_bytes_total(), sent_total);
  EXPECT_EQ(status.pid(), a.upperd->pid());
  EXPECT_FALSE(status.draining());
  EXPECT_EQ(status.data_address(),
            absl::StrCat("127.0.0.1:", a.upperd->data_port()));
  EXPECT_GT(
      google::protobuf::util::TimeUtil::DurationToNanoseconds(status.uptime()),
      0);

  absl::StatusOr<std::vector<Connection>> listed = ListConnections(*a.stub);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), kClients);
  uint64_t previous_id = 0;
  for (const Connection& c : *listed) {
    EXPECT_GT(c.id(), previous_id) << "not ordered by id";
    previous_id = c.id();
    ASSERT_EQ(sent_by_port.count(c.peer_port()), 1u)
        << "unknown peer port " << c.peer_port();
    EXPECT_EQ(c.peer_address(), "127.0.0.1");
    EXPECT_EQ(c.mode(), mode());
    EXPECT_EQ(c.received_bytes(), sent_by_port[c.peer_port()]);
    EXPECT_EQ(c.sent_bytes(), sent_by_port[c.peer_port()]);
    sent_by_port.erase(c.peer_port());  // each client listed once
    if (fork_mode()) {
      // A child of the fork server, which is upperd's child.
      EXPECT_NE(c.worker_pid(), a.upperd->pid());
      const pid_t fork_server = ParentPid(c.worker_pid());
      EXPECT_NE(fork_server, a.upperd->pid());
      EXPECT_EQ(ParentPid(fork_server), a.upperd->pid());
      EXPECT_EQ(c.worker_tid(), 0);
    } else {
      EXPECT_EQ(c.worker_pid(), a.upperd->pid());
      EXPECT_NE(c.worker_tid(), a.upperd->pid());
      EXPECT_TRUE(IsThreadOf(a.upperd->pid(), c.worker_tid()))
          << c.worker_tid();
    }
  }

  clients.clear();  // EOF on every connection
  const ServerStatus after = StatusWhen(*a.stub, [](const ServerStatus& s) {
    return s.active_connections() == 0;
  });
  EXPECT_EQ(after.active_connections(), 0u);
  EXPECT_EQ(after.closed_total(), kClients);
  EXPECT_EQ(after.closed_by_reason().at("client"), kClients);
  EXPECT_EQ(after.received_bytes_total(), sent_total);
  EXPECT_EQ(after.sent_bytes_total(), sent_total);
  absl::StatusOr<std::vector<Connection>> none = ListConnections(*a.stub);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_P(AdminTest, ListingFiltersByMode) {
  Admined a = Start();
  ASSERT_NE(a.stub, nullptr);
  absl::StatusOr<UniqueFd> fd = Connect(a.upperd->data_port());
  ASSERT_TRUE(fd.ok());
  Echo(fd->get(), "hello");
  for (admin::v1::Mode filter : {mode(), other_mode()}) {
    auto context = Context();
    admin::v1::ListConnectionsRequest request;
    request.set_mode(filter);
    admin::v1::ListConnectionsResponse response;
    ASSERT_TRUE(
        a.stub->ListConnections(context.get(), request, &response).ok());
    EXPECT_EQ(response.connections_size(), filter == mode() ? 1 : 0);
  }
}

TEST_P(AdminTest, CloseConnectionEndsTheRightClientAndFreesItsSlot) {
  Admined a = Start();
  ASSERT_NE(a.stub, nullptr);
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<UniqueFd> fd = Connect(a.upperd->data_port());
    ASSERT_TRUE(fd.ok());
    Echo(fd->get(), absl::StrCat("client ", i));
    clients.push_back(*std::move(fd));
  }
  const uint16_t victim_port = LocalPort(clients[1].get());
  absl::StatusOr<std::vector<Connection>> listed = ListConnections(*a.stub);
  ASSERT_TRUE(listed.ok());
  uint64_t victim_id = 0;
  for (const Connection& c : *listed) {
    if (c.peer_port() == victim_port) victim_id = c.id();
  }
  ASSERT_NE(victim_id, 0u);

  auto context = Context();
  admin::v1::CloseConnectionRequest request;
  request.set_id(victim_id);
  admin::v1::CloseConnectionResponse response;
  const grpc::Status closed =
      a.stub->CloseConnection(context.get(), request, &response);
  ASSERT_TRUE(closed.ok()) << closed.error_message();
  EXPECT_EQ(response.connection().id(), victim_id);
  EXPECT_EQ(response.connection().peer_port(), victim_port);

  // The victim reads EOF; the others still echo.
  absl::StatusOr<std::string> rest =
      ReadUntilEof(clients[1].get(), absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "");
  Echo(clients[0].get(), "still here");
  Echo(clients[2].get(), "me too");

  const ServerStatus status = StatusWhen(*a.stub, [](const ServerStatus& s) {
    return s.active_connections() == 2;
  });
  EXPECT_EQ(status.active_connections(), 2u);
  EXPECT_EQ(status.closed_by_reason().at("killed"), 1u);
  EXPECT_EQ(status.closed_total(), 1u);
  EXPECT_EQ(status.worker_crashes_total(), 0u);
  absl::StatusOr<std::vector<Connection>> left = ListConnections(*a.stub);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 2u);
  for (const Connection& c : *left) EXPECT_NE(c.id(), victim_id);

  // Gone now: closing it again is NOT_FOUND.
  auto again = Context();
  EXPECT_EQ(
      a.stub->CloseConnection(again.get(), request, &response).error_code(),
      grpc::StatusCode::NOT_FOUND);
}

TEST_P(AdminTest, CloseRightAfterAcceptStillEndsTheConnection) {
  // The slot is listed from accept on, before its thread or child exists:
  // the close must still reach it.
  Admined a = Start();
  ASSERT_NE(a.stub, nullptr);
  for (int round = 0; round < 5; ++round) {
    absl::StatusOr<UniqueFd> fd = Connect(a.upperd->data_port());
    ASSERT_TRUE(fd.ok());
    const uint16_t port = LocalPort(fd->get());
    uint64_t id = 0;
    ASSERT_TRUE(Eventually(
        [&] {
          absl::StatusOr<std::vector<Connection>> listed =
              ListConnections(*a.stub);
          for (const Connection& c :
               listed.value_or(std::vector<Connection>())) {
            if (c.peer_port() == port) id = c.id();
          }
          return id != 0;
        },
        absl::Seconds(5)));
    auto context = Context();
    admin::v1::CloseConnectionRequest request;
    request.set_id(id);
    admin::v1::CloseConnectionResponse response;
    ASSERT_TRUE(
        a.stub->CloseConnection(context.get(), request, &response).ok());
    absl::StatusOr<std::string> rest =
        ReadUntilEof(fd->get(), absl::Now() + absl::Seconds(10));
    ASSERT_TRUE(rest.ok()) << "round " << round << ": " << rest.status();
  }
  const ServerStatus status = StatusWhen(*a.stub, [](const ServerStatus& s) {
    return s.active_connections() == 0;
  });
  EXPECT_EQ(status.active_connections(), 0u);
  EXPECT_EQ(status.closed_by_reason().at("killed"), 5u);
}

TEST_P(AdminTest, WatchStatusStreamsThenEndsWithOkWhenUpperdDrains) {
  Admined a = Start();
  ASSERT_NE(a.stub, nullptr);
  auto context = Context("", absl::Seconds(30));
  admin::v1::WatchStatusRequest request;
  request.mutable_interval()->set_nanos(100'000'000);
  auto stream = a.stub->WatchStatus(context.get(), request);
  ServerStatus status;
  int received = 0;
  const absl::Time start = absl::Now();
  while (received < 3 && stream->Read(&status)) ++received;
  ASSERT_EQ(received, 3);
  // Three statuses 100 ms apart: the first at once, so at least ~200 ms.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
  EXPECT_FALSE(status.draining());

  a.upperd->Signal(SIGTERM);
  bool saw_draining = false;
  for (int i = 0; i < 1000 && stream->Read(&status); ++i) {
    saw_draining = status.draining();
  }
  EXPECT_TRUE(saw_draining) << "the last status should say draining";
  const grpc::Status end = stream->Finish();
  EXPECT_TRUE(end.ok()) << end.error_code() << ": " << end.error_message();
  EXPECT_TRUE(
      a.upperd->WaitForLog("watch_ended reason=draining", absl::Seconds(5))
          .ok());
  absl::StatusOr<int> code = a.upperd->WaitExit(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
}

INSTANTIATE_TEST_SUITE_P(BothModes, AdminTest,
                         ::testing::Values("thread", "fork"),
                         [](const auto& info) { return info.param; });

TEST(AdminApi, SetModeReturnsThePreviousModeAndNewConnectionsUseIt) {
  Admined a = StartAdmined({"--mode=thread"});
  ASSERT_NE(a.stub, nullptr);
  auto context = Context();
  admin::v1::SetModeRequest request;
  request.set_mode(admin::v1::MODE_FORK);
  admin::v1::SetModeResponse response;
  ASSERT_TRUE(a.stub->SetMode(context.get(), request, &response).ok());
  EXPECT_EQ(response.previous_mode(), admin::v1::MODE_THREAD);
  EXPECT_EQ(response.mode(), admin::v1::MODE_FORK);

  absl::StatusOr<UniqueFd> fd = Connect(a.upperd->data_port());
  ASSERT_TRUE(fd.ok());
  Echo(fd->get(), "forked");
  absl::StatusOr<std::vector<Connection>> listed = ListConnections(*a.stub);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().mode(), admin::v1::MODE_FORK);
  absl::StatusOr<ServerStatus> status = GetStatus(*a.stub);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->mode(), admin::v1::MODE_FORK);
  EXPECT_EQ(status->mode_switches_total(), 1u);
}

TEST(AdminApi, BadModeIsInvalidArgumentWithAMessage) {
  Admined a = StartAdmined({});
  ASSERT_NE(a.stub, nullptr);
  for (int bad : {0, 7, -1}) {  // MODE_UNSPECIFIED and unknown values
    auto context = Context();
    admin::v1::SetModeRequest request;
    request.set_mode(static_cast<admin::v1::Mode>(bad));
    admin::v1::SetModeResponse response;
    const grpc::Status s = a.stub->SetMode(context.get(), request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_NE(s.error_message().find("MODE_FORK or MODE_THREAD"),
              std::string::npos)
        << s.error_message();
  }
  auto context = Context();
  admin::v1::ListConnectionsRequest list;
  list.set_mode(static_cast<admin::v1::Mode>(9));
  admin::v1::ListConnectionsResponse listed;
  EXPECT_EQ(a.stub->ListConnections(context.get(), list, &listed).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(AdminApi, UnknownConnectionIsNotFound) {
  Admined a = StartAdmined({});
  ASSERT_NE(a.stub, nullptr);
  auto context = Context();
  admin::v1::CloseConnectionRequest request;
  request.set_id(424242);
  admin::v1::CloseConnectionResponse response;
  const grpc::Status s =
      a.stub->CloseConnection(context.get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "no live connection with id 424242");
}

TEST(AdminApi, WatchIntervalBelowAHundredMillisecondsIsInvalid) {
  Admined a = StartAdmined({});
  ASSERT_NE(a.stub, nullptr);
  auto context = Context();
  admin::v1::WatchStatusRequest request;
  request.mutable_interval()->set_nanos(99'000'000);
  auto stream = a.stub->WatchStatus(context.get(), request);
  ServerStatus status;
  EXPECT_FALSE(stream->Read(&status));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(AdminApi, WatchDefaultsToOneSecondAndStopsWhenTheClientCancels) {
  Admined a = StartAdmined({});
  ASSERT_NE(a.stub, nullptr);
  auto context = Context("", absl::Seconds(30));
  auto stream =
      a.stub->WatchStatus(context.get(), admin::v1::WatchStatusRequest());
  ServerStatus status;
  const absl::Time start = absl::Now();
  ASSERT_TRUE(stream->Read(&status));
  ASSERT_TRUE(stream->Read(&status));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(900));
  context->TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The server side lets go too (it polls for the cancel), before any drain.
  EXPECT_TRUE(
      a.upperd->WaitForLog("watch_ended reason=cancelled", absl::Seconds(5))
          .ok())
      << a.upperd->Log();
  EXPECT_FALSE(absl::StrContains(a.upperd->Log(), " draining "));
  ASSERT_TRUE(GetStatus(*a.stub).ok());
}

TEST(AdminApi, WatchesPastTheCapAreResourceExhaustedAndOtherCallsStillWork) {
  constexpr int kMaxWatches = 8;  // AdminServiceImpl::kMaxWatches
  Admined a = StartAdmined({});
  ASSERT_NE(a.stub, nullptr);
  struct Watch {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientReader<ServerStatus>> stream;
  };
  // Opens a watch and reads its first status, so its server side runs; a
  // refused one is finished at once and its status returned.
  const auto open_watch = [&](Watch& w) {
    w.context = Context("", absl::Seconds(30));
    w.stream =
        a.stub->WatchStatus(w.context.get(), admin::v1::WatchStatusRequest());
    ServerStatus status;
    if (w.stream->Read(&status)) return grpc::Status::OK;
    const grpc::Status refused = w.stream->Finish();
    w.stream.reset();
    return refused;
  };
  const auto end_watch = [](Watch& w) {
    if (!w.stream) return;
    w.context->TryCancel();
    w.stream->Finish();
  };
  std::vector<Watch> watches(kMaxWatches);
  for (int i = 0; i < kMaxWatches; ++i) {
    const grpc::Status opened = open_watch(watches[i]);
    ASSERT_TRUE(opened.ok()) << "watch " << i << ": " << opened.error_message();
  }
  Watch extra;
  const grpc::Status refused = open_watch(extra);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << refused.error_message();
  EXPECT_EQ(refused.error_message(),
            "8 WatchStatus streams are open already; end one, or poll "
            "GetStatus instead");
  // The other methods keep their threads.
  EXPECT_TRUE(GetStatus(*a.stub).ok());
  // A watch that ends frees its place (the server notices the cancel within
  // its 50 ms poll).
  end_watch(watches.back());
  watches.pop_back();
  Watch again;
  EXPECT_TRUE(
      Eventually([&] { return open_watch(again).ok(); }, absl::Seconds(5)));
  end_watch(again);
  for (Watch& w : watches) end_watch(w);
}

TEST(AdminApi, SetModeWhileDrainingIsFailedPrecondition) {
  Admined a = StartAdmined({"--drain_timeout=10s"});
  ASSERT_NE(a.stub, nullptr);
  absl::StatusOr<UniqueFd> held = Connect(a.upperd->data_port());
  ASSERT_TRUE(held.ok());
  Echo(held->get(), "keep the drain going");
  a.upperd->Signal(SIGTERM);
  ASSERT_TRUE(a.upperd->WaitForLog(" draining ", absl::Seconds(5)).ok());
  auto context = Context();
  admin::v1::SetModeRequest request;
  request.set_mode(admin::v1::MODE_FORK);
  admin::v1::SetModeResponse response;
  const grpc::Status s = a.stub->SetMode(context.get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << s.error_message();
  absl::StatusOr<ServerStatus> status = GetStatus(*a.stub);
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(status->draining());
  held->Reset();
  absl::StatusOr<int> code = a.upperd->WaitExit(absl::Seconds(10));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
}

TEST(AdminApi, SetModeUnderStreamingLoadLosesNoByte) {
  Admined a = StartAdmined({"--mode=thread"});
  ASSERT_NE(a.stub, nullptr);
  constexpr int kClients = 32;
  std::atomic<bool> stop{false};
  std::vector<std::future<absl::StatusOr<uint64_t>>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::async(std::launch::async, [&, i] {
      // Connection after connection until told to stop; each one exact.
      uint64_t sent = 0;
      for (int n = 0; n < 10000 && !stop.load(); ++n) {
        const std::string data =
            RandomPayload(4096 + (n * 7919 + i * 104729) % 65536, i * 1000 + n);
        absl::StatusOr<std::string> reply =
            Exchange(a.upperd->data_port(), data, 1 + (i * 997 + n) % 8192,
                     i + n, absl::Seconds(30));
        if (!reply.ok()) return absl::StatusOr<uint64_t>(reply.status());
        if (*reply != ExpectedUpper(data)) {
          return absl::StatusOr<uint64_t>(absl::DataLossError(
              absl::StrCat("client ", i, " connection ", n, " got ",
                           reply->size(), " bytes, wrong")));
        }
        sent += data.size();
      }
      return absl::StatusOr<uint64_t>(sent);
    }));
  }
  // Switch every ~50 ms for ~1 s.
  int switches = 0;
  const absl::Time end = absl::Now() + absl::Seconds(1);
  while (absl::Now() < end) {
    auto context = Context();
    admin::v1::SetModeRequest request;
    request.set_mode(switches % 2 == 0 ? admin::v1::MODE_FORK
                                       : admin::v1::MODE_THREAD);
    admin::v1::SetModeResponse response;
    ASSERT_TRUE(a.stub->SetMode(context.get(), request, &response).ok());
    ++switches;
    absl::SleepFor(absl::Milliseconds(50));
  }
  stop = true;
  uint64_t sent_total = 0;
  for (int i = 0; i < kClients; ++i) {
    absl::StatusOr<uint64_t> sent = clients[i].get();
    ASSERT_TRUE(sent.ok()) << "client " << i << ": " << sent.status();
    sent_total += *sent;
  }
  const ServerStatus status = StatusWhen(*a.stub, [](const ServerStatus& s) {
    return s.active_connections() == 0;
  });
  EXPECT_EQ(status.active_connections(), 0u);
  EXPECT_GT(PerMode(status, admin::v1::MODE_FORK).accepted_total(), 0u);
  EXPECT_GT(PerMode(status, admin::v1::MODE_THREAD).accepted_total(), 0u);
  EXPECT_EQ(status.mode_switches_total(), static_cast<uint64_t>(switches));
  EXPECT_EQ(status.received_bytes_total(), sent_total);
  EXPECT_EQ(status.sent_bytes_total(), sent_total);
  EXPECT_EQ(status.rejected_total(), 0u);
  EXPECT_EQ(status.closed_total(), status.accepted_total());
  EXPECT_EQ(status.closed_by_reason().at("client"), status.closed_total());
  std::cout << "[ figures  ] " << switches << " switches, "
            << status.accepted_total() << " connections ("
            << PerMode(status, admin::v1::MODE_FORK).accepted_total()
            << " fork, "
            << PerMode(status, admin::v1::MODE_THREAD).accepted_total()
            << " thread), " << sent_total << " bytes each way\n";
}

}  // namespace
}  // namespace upper::testing
