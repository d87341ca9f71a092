// The output of a command run against a fleet (--addr a,b,c), shared by
// status, connections, mode and health:
//
//   text: a table whose first column is INSTANCE; an instance that answered
//         gives its rows, one that did not a note "<addr>  <error>"; then an
//         optional last row (status's TOTAL).
//   json: the command's Fleet* message, one Instance* entry per instance in
//         target order with `address` and either the command's fields or
//         `error` (InstanceError); then optional fleet-wide fields.
//   exit: 1 if the JSON cannot be printed, else FleetExitCode (errors.h);
//         for a write (`mode fork`, format.write) FleetWriteExitCode, and a
//         line on stderr names the instances that failed, so that neither
//         a script nor a person takes a partial change for a done one.
//
// A command describes only what is its own in a FleetFormat:
//
//   FleetFormat<out::FleetHealth, std::string> format;
//   format.columns = {{"STATUS"}};
//   format.rows = [](const std::string& s) { return FleetRows{{s}}; };
//   format.fill = [](const std::string& s, out::InstanceHealth* instance) {
//     instance->set_status(s);
//   };
//   return PrintFleet(context, results, format);
//
// Runs on the caller's thread, like the commands.
#pragma once

#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ctl/admin_client.h"
#include "ctl/command.h"
#include "ctl/errors.h"
#include "ctl/format/table.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/status.h"

namespace upper::ctl {

// Rows of cells, each without the INSTANCE cell that the printer puts first.
using FleetRows = std::vector<std::vector<std::string>>;

// `Fleet` is a message with `repeated <Instance> instances`, each Instance
// having `string address` and `InstanceError error`; T is what QueryAll
// returned for one instance.
template <typename Fleet, typename T>
struct FleetFormat {
  using Instance =
      std::remove_pointer_t<decltype(std::declval<Fleet&>().add_instances())>;

  // The columns after INSTANCE.
  std::vector<Column> columns;
  // The rows of an instance that answered (zero or more).
  std::function<FleetRows(const T& value)> rows;
  // The JSON fields of an instance that answered; address is already set.
  std::function<void(const T& value, Instance* instance)> fill;
  // Optional: a row after every instance, its first cell included.
  std::function<std::vector<std::string>()> last_row;
  // Optional: the fleet-wide JSON fields, after the instances.
  std::function<void(Fleet* fleet)> fill_fleet;
  // A write: every instance must succeed (see the header).
  bool write = false;
};

// What decides a fleet's exit status: every instance's status, in order,
// the addresses of those that failed, and whether it was a write.
struct FleetOutcome {
  std::vector<grpc::Status> statuses;
  std::vector<std::string> failed;
  bool write = false;
};

template <typename T>
FleetOutcome Outcome(const std::vector<InstanceResult<T>>& results,
                     bool write) {
  FleetOutcome outcome;
  outcome.write = write;
  outcome.statuses.reserve(results.size());
  for (const auto& result : results) {
    outcome.statuses.push_back(result.status);
    if (!result.status.ok()) outcome.failed.push_back(result.address);
  }
  return outcome;
}

// Prints `fleet` as JSON; then the exit status as the header says.
int FinishFleetJson(const CommandContext& context,
                    const google::protobuf::Message& fleet,
                    const FleetOutcome& outcome);
// Prints `table`; then the exit status as the header says.
int FinishFleetTable(const CommandContext& context, const Table& table,
                     const FleetOutcome& outcome);

template <typename Fleet, typename T>
int PrintFleetJson(const CommandContext& context,
                   const std::vector<InstanceResult<T>>& results,
                   const FleetFormat<Fleet, T>& format) {
  Fleet fleet;
  for (const auto& result : results) {
    auto* instance = fleet.add_instances();
    instance->set_address(result.address);
    if (result.status.ok()) {
      format.fill(result.value, instance);
    } else {
      *instance->mutable_error() = ToInstanceError(result.status);
    }
  }
  if (format.fill_fleet) format.fill_fleet(&fleet);
  return FinishFleetJson(context, fleet, Outcome(results, format.write));
}

template <typename Fleet, typename T>
int PrintFleetTable(const CommandContext& context,
                    const std::vector<InstanceResult<T>>& results,
                    const FleetFormat<Fleet, T>& format) {
  std::vector<Column> columns = {{"INSTANCE"}};
  columns.insert(columns.end(), format.columns.begin(), format.columns.end());
  Table table(std::move(columns));
  for (const auto& result : results) {
    if (!result.status.ok()) {
      table.AddNote(result.address, ErrorText(result.status));
      continue;
    }
    for (std::vector<std::string>& cells : format.rows(result.value)) {
      cells.insert(cells.begin(), result.address);
      table.AddRow(std::move(cells));
    }
  }
  if (format.last_row) table.AddRow(format.last_row());
  return FinishFleetTable(context, table, Outcome(results, format.write));
}

// The fleet's output in the format --output asks for; its exit status.
template <typename Fleet, typename T>
int PrintFleet(const CommandContext& context,
               const std::vector<InstanceResult<T>>& results,
               const FleetFormat<Fleet, T>& format) {
  return context.json() ? PrintFleetJson(context, results, format)
                        : PrintFleetTable(context, results, format);
}

}  // namespace upper::ctl
