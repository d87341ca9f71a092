// Paging of ListConnections, as Google's API design guide's List methods
// page (https://google.aip.dev/158): a page size with a default and a
// maximum, and an opaque token that continues where the last page ended.
//
// A page holds the connections with the smallest ids above the token's id,
// in id order, so paging needs no state in the server: connections that end
// between pages are simply not listed, new ones (higher ids) come later.
// The token also names the mode filter it was issued for, so a token used
// with another filter is refused rather than silently skipping rows.
//
// Pure functions over a snapshot: thread-safe, no gRPC types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/base/mode.h"
#include "server/data/connection_table.h"

namespace upper {

// page_size 0 means this many.
inline constexpr int32_t kDefaultConnectionsPageSize = 1000;
// Larger page sizes are clamped to this. A worst-case Connection message
// (IPv6 peer, every number at its widest) is 141 bytes in a response, so a
// full page is at most ~1.4 MB: well under a client's default 4 MiB
// receive limit (connection_pages_test.cc measures it).
inline constexpr int32_t kMaxConnectionsPageSize = 10000;

// The page size a request's `page_size` means: 0 → the default, above the
// maximum → the maximum; negative → InvalidArgument.
absl::StatusOr<size_t> ConnectionsPageSize(int32_t requested);

// The token that continues a listing of `filter` (kUnspecified: all modes)
// after connection `after_id`.
std::string EncodeConnectionsPageToken(Mode filter, uint64_t after_id);

// The id a `token` continues after (0 for an empty token: the first page).
// InvalidArgument when the token is not one EncodeConnectionsPageToken made,
// or was made for another filter.
absl::StatusOr<uint64_t> DecodeConnectionsPageToken(absl::string_view token,
                                                    Mode filter);

// Which connections a page holds.
struct ConnectionIdsPage {
  std::vector<LiveConnectionId> ids;  // ascending id
  std::string next_page_token;        // empty on the last page
};

// The page of `live` (in any order) after `after_id`: at most `page_size`
// (> 0) connections of `filter`, the lowest ids first. Selects the page with
// nth_element rather than sorting all of `live`.
ConnectionIdsPage SelectConnectionsPage(std::vector<LiveConnectionId> live,
                                        Mode filter, uint64_t after_id,
                                        size_t page_size);

struct ConnectionsPage {
  std::vector<ConnectionInfo> connections;  // ascending id
  std::string next_page_token;              // empty on the last page
};

// A page read from `table`: the ids first (ConnectionTable::LiveIds, a few
// loads a slot), then the whole rows of the page's connections only. A
// connection that ends between the two reads is left out, so a page may be
// shorter than page_size (even empty) and still have a next_page_token.
// Thread-safe as the table's readers are.
ConnectionsPage ReadConnectionsPage(const ConnectionTable& table, Mode filter,
                                    uint64_t after_id, size_t page_size);

}  // namespace upper
