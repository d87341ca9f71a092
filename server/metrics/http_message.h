// HTTP/1.x request heads and responses for the metrics endpoint's server
// (http_server.h): pure functions over text, no I/O, so every parse rule is
// unit-tested without a socket.
//
// Only the request line is interpreted. Header fields change nothing about
// the answer (one representation, no compression, no keep-alive: every
// response says `Connection: close`), so they are only counted against the
// head's size bound, never parsed. All functions are thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace upper {

// The offset just past the blank line that ends the request head in
// `received` ("\r\n\r\n", or leniently "\n\n"), ignoring empty lines before
// the request line (RFC 9112 section 2.2); npos while the head is
// incomplete.
size_t FindHeadEnd(absl::string_view received);

struct HttpRequestLine {
  enum class Error {
    kNone,
    kBadRequest,           // not "METHOD SP target SP HTTP/x.y"
    kVersionNotSupported,  // HTTP/x.y other than 1.0 and 1.1
  };
  Error error = Error::kNone;
  std::string method;  // case-sensitive, as sent: "GET"
  std::string path;    // the target without its query: "/metrics"
};

// Parses the request line of a complete head (see FindHeadEnd). Accepts the
// origin form ("/metrics?x=1") and the absolute form
// ("http://host:9464/metrics").
HttpRequestLine ParseRequestLine(absl::string_view head);

// A whole HTTP/1.1 response: status line, `extra_headers` (each ending in
// "\r\n", e.g. "Allow: GET, HEAD\r\n"), Content-Type, Content-Length of
// `body`, `Connection: close`, the blank line and, unless `head_only` (the
// answer to HEAD), the body.
std::string HttpResponse(int code, absl::string_view content_type,
                         absl::string_view extra_headers,
                         absl::string_view body, bool head_only);

// "OK", "Not Found", ... for the codes HttpServer sends; "Error" otherwise.
absl::string_view HttpReason(int code);

}  // namespace upper
