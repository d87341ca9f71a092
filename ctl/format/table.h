// Table: aligned plain-text columns for upperctl's human output.
//
//   Table table({{"ID", Align::kRight}, {"PEER"}, {"RECEIVED",
//   Align::kRight}}); table.AddRow({"7", "127.0.0.1:40112", "1.5 KiB"});
//   table.AddNote("10.0.0.3:50051", "cannot reach ...");
//   std::cout << table.Render();
//
// Columns are separated by two spaces and padded to their widest cell;
// lines carry no trailing blanks. A note row has a first cell and then free
// text that spans the other columns (used for an instance's error), and does
// not widen them. Not thread-safe; build a table on one thread.
#pragma once

#include <string>
#include <vector>

namespace upper::ctl {

enum class Align { kLeft, kRight };

struct Column {
  std::string header;
  Align align = Align::kLeft;
};

class Table {
 public:
  explicit Table(std::vector<Column> columns, bool show_header = true);

  // Missing trailing cells are blank; extra cells are an error in the
  // caller and are dropped.
  void AddRow(std::vector<std::string> cells);
  // A row of `first` and then `text` across the remaining columns.
  void AddNote(std::string first, std::string text);

  // Every row, each ending with '\n'.
  std::string Render() const;

 private:
  struct Row {
    std::vector<std::string> cells;
    bool note = false;
  };
  std::vector<Column> columns_;
  bool show_header_;
  std::vector<Row> rows_;
};

}  // namespace upper::ctl
