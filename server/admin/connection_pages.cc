#include "server/admin/connection_pages.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace upper {
namespace {

// The token is web-safe base64 of "c1:<mode>:<after_id>"; the version
// prefix lets a later server change the format and still recognise these.
constexpr absl::string_view kTokenVersion = "c1";
// Far above any token this server makes ("c1:2:" + 20 digits, encoded).
constexpr size_t kMaxTokenSize = 64;

absl::Status BadToken(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "page_token is not a token this server issued (", why,
      "): pass a response's next_page_token unchanged, or none for the "
      "first page"));
}

std::string FilterText(Mode filter) {
  return filter == Mode::kUnspecified ? "all modes"
                                      : absl::StrCat("mode ", ModeName(filter));
}

bool ValidMode(uint32_t value) {
  return value == static_cast<uint32_t>(Mode::kUnspecified) ||
         value == static_cast<uint32_t>(Mode::kFork) ||
         value == static_cast<uint32_t>(Mode::kThread);
}

}  // namespace

absl::StatusOr<size_t> ConnectionsPageSize(int32_t requested) {
  if (requested < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_size ", requested, " is negative (0 means the default, ",
        kDefaultConnectionsPageSize, "; at most ", kMaxConnectionsPageSize,
        " are returned)"));
  }
  if (requested == 0) return kDefaultConnectionsPageSize;
  return static_cast<size_t>(std::min(requested, kMaxConnectionsPageSize));
}

std::string EncodeConnectionsPageToken(Mode filter, uint64_t after_id) {
  return absl::WebSafeBase64Escape(absl::StrCat(
      kTokenVersion, ":", static_cast<uint32_t>(filter), ":", after_id));
}

absl::StatusOr<uint64_t> DecodeConnectionsPageToken(absl::string_view token,
                                                    Mode filter) {
  if (token.empty()) return 0;
  if (token.size() > kMaxTokenSize) return BadToken("too long");
  std::string text;
  if (!absl::WebSafeBase64Unescape(token, &text)) {
    return BadToken("not web-safe base64");
  }
  const std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  uint32_t mode = 0;
  uint64_t after_id = 0;
  if (parts.size() != 3 || parts[0] != kTokenVersion ||
      !absl::SimpleAtoi(parts[1], &mode) || !ValidMode(mode) ||
      !absl::SimpleAtoi(parts[2], &after_id)) {
    return BadToken("unknown format");
  }
  if (static_cast<Mode>(mode) != filter) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_token continues a listing of ",
        FilterText(static_cast<Mode>(mode)), " but this request asks for ",
        FilterText(filter),
        ": keep the mode filter across pages, or start again without a "
        "page_token"));
  }
  return after_id;
}

ConnectionIdsPage SelectConnectionsPage(std::vector<LiveConnectionId> live,
                                        Mode filter, uint64_t after_id,
                                        size_t page_size) {
  std::erase_if(live, [&](const LiveConnectionId& c) {
    return c.id <= after_id ||
           (filter != Mode::kUnspecified && c.mode != filter);
  });
  const auto by_id = [](const LiveConnectionId& a, const LiveConnectionId& b) {
    return a.id < b.id;
  };
  const bool more = live.size() > page_size;
  if (more) {
    // The page_size lowest ids, in some order, before the rest.
    std::nth_element(live.begin(), live.begin() + page_size, live.end(), by_id);
    live.resize(page_size);
  }
  std::sort(live.begin(), live.end(), by_id);
  ConnectionIdsPage page;
  if (more) {
    page.next_page_token = EncodeConnectionsPageToken(filter, live.back().id);
  }
  page.ids = std::move(live);
  return page;
}

ConnectionsPage ReadConnectionsPage(const ConnectionTable& table, Mode filter,
                                    uint64_t after_id, size_t page_size) {
  ConnectionIdsPage ids =
      SelectConnectionsPage(table.LiveIds(), filter, after_id, page_size);
  ConnectionsPage page;
  page.connections.reserve(ids.ids.size());
  for (const LiveConnectionId& live : ids.ids) {
    std::optional<ConnectionInfo> row = table.Read(live.slot);
    // Gone, or its slot already serves a newer connection (a later page's).
    if (!row || row->id != live.id) continue;
    page.connections.push_back(*std::move(row));
  }
  page.next_page_token = std::move(ids.next_page_token);
  return page;
}

}  // namespace upper
