// The ListConnections paging helpers: page sizes, tokens, page selection,
// and the worst-case size of a full page.
#include "server/admin/connection_pages.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "upper/admin/v1/admin.pb.h"

namespace upper {
namespace {

using google::protobuf::util::TimeUtil;

LiveConnectionId Row(uint64_t id, Mode mode = Mode::kThread) {
  LiveConnectionId c;
  c.id = id;
  c.slot = static_cast<uint32_t>(id % 1000);
  c.mode = mode;
  return c;
}

std::vector<uint64_t> Ids(const ConnectionIdsPage& page) {
  std::vector<uint64_t> ids;
  for (const LiveConnectionId& c : page.ids) ids.push_back(c.id);
  return ids;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ConnectionsPageSize, ZeroIsTheDefault) {
  EXPECT_EQ(ConnectionsPageSize(0).value(), kDefaultConnectionsPageSize);
}

TEST(ConnectionsPageSize, ValuesUpToTheMaximumAreKept) {
  EXPECT_EQ(ConnectionsPageSize(1).value(), 1u);
  EXPECT_EQ(ConnectionsPageSize(kMaxConnectionsPageSize).value(),
            static_cast<size_t>(kMaxConnectionsPageSize));
}

TEST(ConnectionsPageSize, ValuesAboveTheMaximumAreClamped) {
  EXPECT_EQ(ConnectionsPageSize(kMaxConnectionsPageSize + 1).value(),
            static_cast<size_t>(kMaxConnectionsPageSize));
  EXPECT_EQ(ConnectionsPageSize(std::numeric_limits<int32_t>::max()).value(),
            static_cast<size_t>(kMaxConnectionsPageSize));
}

TEST(ConnectionsPageSize, NegativeIsInvalidArgument) {
  for (int32_t bad : {-1, std::numeric_limits<int32_t>::min()}) {
    const absl::StatusOr<size_t> size = ConnectionsPageSize(bad);
    EXPECT_EQ(size.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(Contains(std::string(size.status().message()), "negative"))
        << size.status();
  }
}

TEST(ConnectionsPageToken, EmptyStartsAtTheBeginning) {
  EXPECT_EQ(DecodeConnectionsPageToken("", Mode::kFork).value(), 0u);
}

TEST(ConnectionsPageToken, RoundTripsForEveryFilterAndExtremeIds) {
  for (Mode filter : {Mode::kUnspecified, Mode::kFork, Mode::kThread}) {
    for (uint64_t id :
         {uint64_t{1}, uint64_t{99999}, std::numeric_limits<uint64_t>::max()}) {
      const std::string token = EncodeConnectionsPageToken(filter, id);
      EXPECT_FALSE(token.empty());
      EXPECT_EQ(DecodeConnectionsPageToken(token, filter).value(), id);
    }
  }
}

TEST(ConnectionsPageToken, AnotherFilterIsInvalidArgumentNamingBoth) {
  const std::string token = EncodeConnectionsPageToken(Mode::kFork, 5);
  const absl::StatusOr<uint64_t> decoded =
      DecodeConnectionsPageToken(token, Mode::kUnspecified);
  ASSERT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(decoded.status().message());
  EXPECT_TRUE(Contains(message, "mode fork")) << message;
  EXPECT_TRUE(Contains(message, "all modes")) << message;
  EXPECT_FALSE(DecodeConnectionsPageToken(token, Mode::kThread).ok());
}

TEST(ConnectionsPageToken, MalformedTokensAreInvalidArgument) {
  const std::vector<std::string> bad = {
      "!!!",                                  // not base64
      absl::WebSafeBase64Escape("c1:0"),      // too few parts
      absl::WebSafeBase64Escape("c1:0:1:2"),  // too many
      absl::WebSafeBase64Escape("c2:0:1"),    // another version
      absl::WebSafeBase64Escape("c1:7:1"),    // not a mode
      absl::WebSafeBase64Escape("c1:0:-1"),   // not an id
      absl::WebSafeBase64Escape("c1:0:"),     // no id
      absl::WebSafeBase64Escape("c1:0:18446744073709551616"),  // > uint64
      std::string(65, 'A'),                                    // too long
  };
  for (const std::string& token : bad) {
    const absl::StatusOr<uint64_t> decoded =
        DecodeConnectionsPageToken(token, Mode::kUnspecified);
    ASSERT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument)
        << token;
    EXPECT_TRUE(Contains(std::string(decoded.status().message()),
                         "page_token is not a token this server issued"))
        << decoded.status();
  }
}

TEST(SelectConnectionsPage, AnEmptySnapshotIsOneEmptyLastPage) {
  const ConnectionIdsPage page =
      SelectConnectionsPage({}, Mode::kUnspecified, 0, 3);
  EXPECT_TRUE(page.ids.empty());
  EXPECT_TRUE(page.next_page_token.empty());
}

TEST(SelectConnectionsPage, TakesTheLowestIdsInOrderWhateverTheSnapshotOrder) {
  const ConnectionIdsPage page = SelectConnectionsPage(
      {Row(9), Row(2), Row(7), Row(4), Row(1)}, Mode::kUnspecified, 0, 3);
  EXPECT_EQ(Ids(page), (std::vector<uint64_t>{1, 2, 4}));
  EXPECT_EQ(DecodeConnectionsPageToken(page.next_page_token, Mode::kUnspecified)
                .value(),
            4u);
}

TEST(SelectConnectionsPage, ExactlyAFullLastPageHasNoNextToken) {
  const ConnectionIdsPage page =
      SelectConnectionsPage({Row(3), Row(1), Row(2)}, Mode::kUnspecified, 0, 3);
  EXPECT_EQ(Ids(page), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_TRUE(page.next_page_token.empty());
}

TEST(SelectConnectionsPage, ContinuesStrictlyAfterTheTokensId) {
  const ConnectionIdsPage page = SelectConnectionsPage(
      {Row(5), Row(4), Row(6), Row(3)}, Mode::kUnspecified, 4, 10);
  EXPECT_EQ(Ids(page), (std::vector<uint64_t>{5, 6}));
  EXPECT_TRUE(page.next_page_token.empty());
}

TEST(SelectConnectionsPage, AfterTheLastIdIsAnEmptyLastPage) {
  const ConnectionIdsPage page =
      SelectConnectionsPage({Row(1), Row(2)}, Mode::kUnspecified, 2, 10);
  EXPECT_TRUE(page.ids.empty());
  EXPECT_TRUE(page.next_page_token.empty());
}

TEST(SelectConnectionsPage, FilterCountsOnlyItsModeTowardsThePage) {
  const std::vector<LiveConnectionId> live = {
      Row(1, Mode::kThread), Row(2, Mode::kFork), Row(3, Mode::kThread),
      Row(4, Mode::kFork), Row(5, Mode::kFork)};
  const ConnectionIdsPage first =
      SelectConnectionsPage(live, Mode::kFork, 0, 2);
  EXPECT_EQ(Ids(first), (std::vector<uint64_t>{2, 4}));
  ASSERT_FALSE(first.next_page_token.empty());
  const uint64_t after =
      DecodeConnectionsPageToken(first.next_page_token, Mode::kFork).value();
  const ConnectionIdsPage second =
      SelectConnectionsPage(live, Mode::kFork, after, 2);
  EXPECT_EQ(Ids(second), (std::vector<uint64_t>{5}));
  EXPECT_TRUE(second.next_page_token.empty());
}

TEST(SelectConnectionsPage, FollowingTokensYieldsEveryIdOnceAcrossChurn) {
  std::mt19937_64 random(12);
  std::vector<LiveConnectionId> live;
  for (uint64_t id = 1; id <= 5000; ++id) live.push_back(Row(id));
  std::shuffle(live.begin(), live.end(), random);
  std::vector<uint64_t> seen;
  std::string token;
  uint64_t next_id = 5001;
  for (int pages = 0; pages < 1000; ++pages) {
    const uint64_t after =
        DecodeConnectionsPageToken(token, Mode::kUnspecified).value();
    ConnectionIdsPage page =
        SelectConnectionsPage(live, Mode::kUnspecified, after, 97);
    for (uint64_t id : Ids(page)) seen.push_back(id);
    token = page.next_page_token;
    if (token.empty()) break;
    // Between pages: one connection ends, one starts (a higher id).
    live.erase(live.begin());
    live.push_back(Row(next_id++));
  }
  ASSERT_TRUE(token.empty());
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end());
  // Every connection live for the whole listing is listed.
  for (const LiveConnectionId& c : live) {
    if (c.id <= 5000) {
      EXPECT_TRUE(std::binary_search(seen.begin(), seen.end(), c.id)) << c.id;
    }
  }
}

TEST(ReadConnectionsPage, ReadsTheSelectedRowsFromTheTable) {
  absl::StatusOr<std::unique_ptr<ConnectionTable>> table =
      ConnectionTable::Create(8);
  ASSERT_TRUE(table.ok()) << table.status();
  sockaddr_in6 peer = {};
  peer.sin6_family = AF_INET6;
  peer.sin6_port = htons(40000);
  peer.sin6_addr = in6addr_loopback;
  std::vector<uint32_t> slots;
  for (int i = 0; i < 5; ++i) {
    const std::optional<uint32_t> slot = (*table)->Allocate(
        i == 1 ? Mode::kFork : Mode::kThread,
        reinterpret_cast<const sockaddr*>(&peer), sizeof(peer));
    ASSERT_TRUE(slot);
    slots.push_back(*slot);
  }
  (*table)->Release(slots[2], CloseReason::kClient);  // id 3 ends
  const ConnectionsPage first =
      ReadConnectionsPage(**table, Mode::kThread, 0, 2);
  ASSERT_EQ(first.connections.size(), 2u);
  EXPECT_EQ(first.connections[0].id, 1u);
  EXPECT_EQ(first.connections[1].id, 4u);
  EXPECT_EQ(first.connections[1].peer, "[::1]:40000");
  const uint64_t after =
      DecodeConnectionsPageToken(first.next_page_token, Mode::kThread).value();
  const ConnectionsPage last =
      ReadConnectionsPage(**table, Mode::kThread, after, 2);
  ASSERT_EQ(last.connections.size(), 1u);
  EXPECT_EQ(last.connections[0].id, 5u);
  EXPECT_TRUE(last.next_page_token.empty());
}

// The widest Connection a response can carry: an IPv6 peer at
// INET6_ADDRSTRLEN, every number at its widest varint.
admin::v1::Connection WorstCaseConnection() {
  admin::v1::Connection c;
  c.set_id(std::numeric_limits<uint64_t>::max());
  c.set_peer_address("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
  c.set_peer_port(65535);
  c.set_mode(admin::v1::MODE_THREAD);
  c.set_worker_pid(std::numeric_limits<int32_t>::min());
  c.set_worker_tid(std::numeric_limits<int32_t>::min());
  *c.mutable_started_at() = TimeUtil::GetCurrentTime();
  c.mutable_started_at()->set_seconds(TimeUtil::kTimestampMaxSeconds);
  c.mutable_started_at()->set_nanos(999999999);
  c.set_received_bytes(std::numeric_limits<uint64_t>::max());
  c.set_sent_bytes(std::numeric_limits<uint64_t>::max());
  c.mutable_idle()->set_seconds(TimeUtil::kDurationMaxSeconds);
  c.mutable_idle()->set_nanos(999999999);
  return c;
}

TEST(ConnectionsPageSize, AFullPageOfWorstCaseConnectionsFitsWellUnder4MiB) {
  admin::v1::ListConnectionsResponse page;
  for (int i = 0; i < kMaxConnectionsPageSize; ++i) {
    *page.add_connections() = WorstCaseConnection();
  }
  page.set_next_page_token(EncodeConnectionsPageToken(
      Mode::kThread, std::numeric_limits<uint64_t>::max()));
  const size_t one = WorstCaseConnection().ByteSizeLong();
  const size_t bytes = page.ByteSizeLong();
  RecordProperty("worst_case_connection_bytes", static_cast<int>(one));
  RecordProperty("worst_case_page_bytes", static_cast<int>(bytes));
  // In a response, each also costs its field tag and a 2-byte length.
  EXPECT_LE(one + 3, 141u) << "update the figure in connection_pages.h";
  EXPECT_LT(bytes, size_t{4} * 1024 * 1024 / 2);  // half the 4 MiB limit
}

}  // namespace
}  // namespace upper
