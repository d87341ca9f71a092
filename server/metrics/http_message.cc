#include "server/metrics/http_message.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace upper {
namespace {

// RFC 9110 tchar: what a method may be made of.
bool IsToken(absl::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) continue;
    if (absl::string_view("!#$%&'*+-.^_`|~").find(c) ==
        absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

// "http://host:port/p?q" -> "/p?q"; "http://host" -> "/".
absl::string_view OriginForm(absl::string_view target) {
  for (absl::string_view scheme : {"http://", "https://"}) {
    if (!absl::StartsWithIgnoreCase(target, scheme)) continue;
    target.remove_prefix(scheme.size());
    const size_t slash = target.find('/');
    return slash == absl::string_view::npos ? "/" : target.substr(slash);
  }
  return target;
}

}  // namespace

size_t FindHeadEnd(absl::string_view received) {
  const size_t start = received.find_first_not_of("\r\n");
  if (start == absl::string_view::npos) return absl::string_view::npos;
  for (size_t at = received.find('\n', start); at != absl::string_view::npos;
       at = received.find('\n', at + 1)) {
    if (at + 1 < received.size() && received[at + 1] == '\n') return at + 2;
    if (at + 2 < received.size() && received[at + 1] == '\r' &&
        received[at + 2] == '\n') {
      return at + 3;
    }
  }
  return absl::string_view::npos;
}

HttpRequestLine ParseRequestLine(absl::string_view head) {
  HttpRequestLine result;
  head.remove_prefix(std::min(head.size(), head.find_first_not_of("\r\n")));
  absl::string_view line = head.substr(0, head.find('\n'));
  if (absl::EndsWith(line, "\r")) line.remove_suffix(1);
  const std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3 || !IsToken(parts[0])) {
    result.error = HttpRequestLine::Error::kBadRequest;
    return result;
  }
  const absl::string_view version = parts[2];
  if (version.size() != 8 || !absl::StartsWith(version, "HTTP/") ||
      !absl::ascii_isdigit(static_cast<unsigned char>(version[5])) ||
      version[6] != '.' ||
      !absl::ascii_isdigit(static_cast<unsigned char>(version[7]))) {
    result.error = HttpRequestLine::Error::kBadRequest;
    return result;
  }
  if (version != "HTTP/1.0" && version != "HTTP/1.1") {
    result.error = HttpRequestLine::Error::kVersionNotSupported;
    return result;
  }
  const absl::string_view target = OriginForm(parts[1]);
  if (target.empty() || target.front() != '/') {
    result.error = HttpRequestLine::Error::kBadRequest;
    return result;
  }
  result.method = std::string(parts[0]);
  result.path = std::string(target.substr(0, target.find('?')));
  return result;
}

absl::string_view HttpReason(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

std::string HttpResponse(int code, absl::string_view content_type,
                         absl::string_view extra_headers,
                         absl::string_view body, bool head_only) {
  return absl::StrCat(
      "HTTP/1.1 ", code, " ", HttpReason(code), "\r\n", extra_headers,
      "Content-Type: ", content_type, "\r\nContent-Length: ", body.size(),
      "\r\nConnection: close\r\n\r\n", head_only ? absl::string_view() : body);
}

}  // namespace upper
