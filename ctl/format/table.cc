#include "ctl/format/table.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace upper::ctl {
namespace {

// Display width: counts UTF-8 code points, not bytes, so "µs" or a peer
// name with accents stays aligned. Wide (CJK) glyphs are not special-cased.
size_t Width(const std::string& text) {
  size_t width = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++width;
  }
  return width;
}

void Pad(std::string& line, size_t count) { line.append(count, ' '); }

}  // namespace

Table::Table(std::vector<Column> columns, bool show_header)
    : columns_(std::move(columns)), show_header_(show_header) {}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  rows_.push_back({std::move(cells), false});
}

void Table::AddNote(std::string first, std::string text) {
  rows_.push_back({{std::move(first), std::move(text)}, true});
}

std::string Table::Render() const {
  std::vector<size_t> widths(columns_.size(), 0);
  if (show_header_) {
    for (size_t i = 0; i < columns_.size(); ++i) {
      widths[i] = Width(columns_[i].header);
    }
  }
  for (const Row& row : rows_) {
    // A note's first cell counts toward the first column; its text does not
    // widen anything.
    const size_t cells = row.note ? 1 : row.cells.size();
    for (size_t i = 0; i < cells && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], Width(row.cells[i]));
    }
  }

  std::string out;
  auto emit = [&](const std::vector<std::string>& cells, bool note) {
    std::string line;
    const size_t count = note ? 2 : cells.size();
    for (size_t i = 0; i < count; ++i) {
      const std::string& cell = cells[i];
      const bool last = i + 1 == count;
      if (i > 0) line += "  ";
      if (note && i == 1) {
        line += cell;  // spans the rest: no padding
        continue;
      }
      const size_t gap = widths[i] - std::min(widths[i], Width(cell));
      if (columns_[i].align == Align::kRight) Pad(line, gap);
      line += cell;
      if (columns_[i].align == Align::kLeft && !last) Pad(line, gap);
    }
    // Blank trailing cells leave blanks behind; lines end on their text.
    line.erase(line.find_last_not_of(' ') + 1);
    out += line;
    out += '\n';
  };
  if (show_header_) {
    std::vector<std::string> headers;
    for (const Column& column : columns_) headers.push_back(column.header);
    emit(headers, false);
  }
  for (const Row& row : rows_) emit(row.cells, row.note);
  return out;
}

}  // namespace upper::ctl
