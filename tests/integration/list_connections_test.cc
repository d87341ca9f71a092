// ListConnections pages against a real upperd, through the real upperctl
// and through the C++ stub: a few thousand real thread-mode connections,
// listed with a small page size so that upperctl follows many pages, every
// connection exactly once, for one instance and for a fleet.
//
// Issue 12 asks for 100,000: this machine cannot hold them in one test. Each
// thread-mode connection is an fd here and an fd and a thread in upperd,
// against a hard RLIMIT_NOFILE of 20,000 and a kernel pid_max of 32,768
// shared with everything else on the machine. 100,000 connections go
// through the same paging code in process, against a real ConnectionTable
// (tests/server/admin/admin_service_test.cc,
// ListConnectionsPagesThrough100000ConnectionsEachIdOnce).
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/admin_client.h"
#include "tests/support/subprocess.h"
#include "tests/support/tcp.h"
#include "tests/support/upperd_process.h"
#include "upper/admin/v1/admin.grpc.pb.h"
#include "upper/ctl/v1/output.pb.h"

#ifndef UPPERCTL_PATH
#error "UPPERCTL_PATH must be the path of the upperctl binary"
#endif

namespace upper::testing {
namespace {

namespace admin = ::upper::admin::v1;
namespace out = ::upper::ctl::v1;

constexpr int kConnections = 3000;
// 3,000 / 97: 31 pages per listing.
constexpr int kPageSize = 97;

uint16_t LocalPort(int fd) {
  sockaddr_in addr = {};
  socklen_t length = sizeof(addr);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length), 0);
  return ntohs(addr.sin_port);
}

ProcessResult Upperctl(std::vector<std::string> args) {
  args.insert(args.begin(), UPPERCTL_PATH);
  absl::StatusOr<ProcessResult> result =
      RunProcess(args, {}, absl::Seconds(60));
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : ProcessResult{};
}

template <typename Message>
Message ParseJson(const std::string& json) {
  Message message;
  const auto status =
      google::protobuf::util::JsonStringToMessage(json, &message);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return message;
}

// The peer ports of `connections`, checking ids ascend strictly (so none
// is listed twice).
template <typename Connections>
std::multiset<uint16_t> PortsInIdOrder(const Connections& connections) {
  std::multiset<uint16_t> ports;
  uint64_t last_id = 0;
  for (const admin::Connection& c : connections) {
    EXPECT_GT(c.id(), last_id);
    last_id = c.id();
    EXPECT_EQ(c.mode(), admin::MODE_THREAD);
    ports.insert(static_cast<uint16_t>(c.peer_port()));
  }
  return ports;
}

class ListConnectionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The client side holds an fd per connection too: soft up to hard.
    rlimit limit;
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
    limit.rlim_cur = limit.rlim_max;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
    if (limit.rlim_cur < 2 * kConnections) {
      GTEST_SKIP() << "needs a hard RLIMIT_NOFILE of " << 2 * kConnections;
    }
    absl::StatusOr<std::unique_ptr<UpperdProcess>> upperd =
        UpperdProcess::Start(
            {.args = {"--mode=thread",
                      absl::StrCat("--max_connections=", kConnections + 100)},
             .rlimit_nofile = limit.rlim_max});
    ASSERT_TRUE(upperd.ok()) << upperd.status();
    upperd_ = *std::move(upperd);
    absl::StatusOr<uint16_t> port = upperd_->Port("admin");
    ASSERT_TRUE(port.ok()) << port.status();
    admin_port_ = *port;
    stub_ = admin::AdminService::NewStub(AdminChannel(admin_port_));

    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    for (int i = 0; i < kConnections && absl::Now() < deadline; ++i) {
      absl::StatusOr<UniqueFd> fd = Connect(upperd_->data_port());
      ASSERT_TRUE(fd.ok()) << "connection " << i << ": " << fd.status();
      ports_.insert(LocalPort(fd->get()));
      conns_.push_back(*std::move(fd));
    }
    ASSERT_EQ(conns_.size(), static_cast<size_t>(kConnections));
    const admin::ServerStatus status = StatusWhen(
        *stub_,
        [](const admin::ServerStatus& s) {
          return s.active_connections() == kConnections;
        },
        absl::Seconds(30));
    ASSERT_EQ(status.active_connections(), kConnections);
  }

  std::string Addr() const { return absl::StrCat("127.0.0.1:", admin_port_); }

  std::unique_ptr<UpperdProcess> upperd_;
  uint16_t admin_port_ = 0;
  std::unique_ptr<admin::AdminService::Stub> stub_;
  std::vector<UniqueFd> conns_;
  std::multiset<uint16_t> ports_;
};

TEST_F(ListConnectionsTest, UpperctlFollowsEveryPageJsonAndTable) {
  const absl::Time start = absl::Now();
  ProcessResult run = Upperctl({"connections", "-o", "json",
                                absl::StrCat("--page_size=", kPageSize),
                                absl::StrCat("--addr=", Addr())});
  const absl::Duration took = absl::Now() - start;
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto list = ParseJson<admin::ListConnectionsResponse>(run.out);
  EXPECT_EQ(list.connections_size(), kConnections);
  EXPECT_EQ(PortsInIdOrder(list.connections()), ports_);
  EXPECT_TRUE(list.next_page_token().empty());
  RecordProperty("upperctl_json_ms",
                 static_cast<int>(absl::ToInt64Milliseconds(took)));

  // The table: a header and a row per connection, whatever the paging.
  run = Upperctl(
      {"connections", "--page_size=500", absl::StrCat("--addr=", Addr())});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<std::string> lines =
      absl::StrSplit(run.out, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), static_cast<size_t>(kConnections) + 1);
}

TEST_F(ListConnectionsTest, UpperctlFollowsThePagesOfEveryFleetInstance) {
  // The same upperd twice is a fleet of two for upperctl.
  ProcessResult run = Upperctl({"connections", "-o", "json",
                                absl::StrCat("--page_size=", kPageSize),
                                absl::StrCat("--addr=", Addr(), ",", Addr())});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto fleet = ParseJson<out::FleetConnections>(run.out);
  ASSERT_EQ(fleet.instances_size(), 2);
  for (const out::InstanceConnections& instance : fleet.instances()) {
    EXPECT_FALSE(instance.has_error()) << instance.error().DebugString();
    EXPECT_EQ(PortsInIdOrder(instance.connections()), ports_);
  }
}

TEST_F(ListConnectionsTest, DefaultPagesThroughTheStubListEveryConnection) {
  // No page_size: the server's default of 1,000, so three pages.
  absl::StatusOr<std::vector<admin::Connection>> listed =
      ListConnections(*stub_);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(PortsInIdOrder(*listed), ports_);

  // A client from before paging sees the first page, and a token.
  auto context = Context();
  admin::ListConnectionsResponse first;
  ASSERT_TRUE(stub_
                  ->ListConnections(context.get(),
                                    admin::ListConnectionsRequest(), &first)
                  .ok());
  EXPECT_EQ(first.connections_size(), 1000);
  EXPECT_FALSE(first.next_page_token().empty());
}

TEST_F(ListConnectionsTest, ConnectionsThatEndBetweenPagesAreNotListed) {
  auto context = Context();
  admin::ListConnectionsRequest request;
  request.set_page_size(kPageSize);
  admin::ListConnectionsResponse first;
  ASSERT_TRUE(stub_->ListConnections(context.get(), request, &first).ok());
  ASSERT_EQ(first.connections_size(), kPageSize);
  // Close the last 100 connections: none of them may appear later.
  std::set<uint16_t> closed;
  for (int i = 0; i < 100; ++i) {
    closed.insert(LocalPort(conns_.back().get()));
    conns_.pop_back();
  }
  StatusWhen(*stub_, [](const admin::ServerStatus& s) {
    return s.active_connections() == kConnections - 100;
  });
  request.set_page_token(first.next_page_token());
  int rest = 0;
  for (int pages = 0; pages < 1000 && !request.page_token().empty(); ++pages) {
    auto next_context = Context();
    admin::ListConnectionsResponse page;
    ASSERT_TRUE(
        stub_->ListConnections(next_context.get(), request, &page).ok());
    for (const admin::Connection& c : page.connections()) {
      EXPECT_EQ(closed.count(static_cast<uint16_t>(c.peer_port())), 0u);
      ++rest;
    }
    request.set_page_token(page.next_page_token());
  }
  EXPECT_TRUE(request.page_token().empty());
  EXPECT_EQ(rest, kConnections - 100 - kPageSize);
}

}  // namespace
}  // namespace upper::testing
