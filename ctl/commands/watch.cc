// `upperctl watch`: WatchStatus until Ctrl-C (exit 0), --count updates, or
// the server ends the stream (drain). On a terminal each update redraws the
// status block; into a pipe or file each update is one line (JSON: one
// object per line), so scripts and tests can read it as a log.
//
// A helper thread waits for SIGINT/SIGTERM (interrupt.h) and cancels the
// call; it also cancels when no first update arrived within --timeout, so
// an unreachable server is reported like by every other command.
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "ctl/admin_client.h"
#include "ctl/commands/commands.h"
#include "ctl/format/json.h"
#include "ctl/format/status_text.h"
#include "ctl/format/units.h"
#include "ctl/interrupt.h"

namespace upper::ctl {
namespace {

namespace admin = ::upper::admin::v1;

constexpr char kClearScreen[] = "\033[H\033[2J";
constexpr absl::Duration kPollStep = absl::Milliseconds(50);

void Print(const CommandContext& context, const std::string& address,
           const admin::ServerStatus& status) {
  if (context.json()) {
    absl::StatusOr<std::string> json = ToJson(status, JsonStyle::kOneLine);
    context.out << (json.ok() ? *json : std::string(json.status().message()))
                << '\n';
  } else if (context.stdout_is_tty) {
    context.out << kClearScreen << StatusBlock(address, status) << "\nevery "
                << HumanDuration(context.options.interval)
                << "; Ctrl-C to stop\n";
  } else {
    context.out << StatusLine(absl::Now(), status) << '\n';
  }
  context.out.flush();
}

// Cancels the call when SIGINT/SIGTERM comes (interrupted) or when no
// first update arrived by `first_deadline` (timed out), from a helper
// thread that runs until Stop().
class Canceller {
 public:
  Canceller(InterruptCatcher& catcher, grpc::ClientContext& call,
            absl::Time first_deadline)
      : thread_([this, &catcher, &call, first_deadline] {
          Run(catcher, call, first_deadline);
        }) {}
  Canceller(const Canceller&) = delete;
  Canceller& operator=(const Canceller&) = delete;
  ~Canceller() { Stop(); }

  void GotFirst() { got_first_ = true; }
  // Ends the thread; once the call is over.
  void Stop() {
    finished_ = true;
    if (thread_.joinable()) thread_.join();
  }
  bool interrupted() const { return interrupted_.load(); }
  bool timed_out() const { return timed_out_.load(); }

 private:
  void Run(InterruptCatcher& catcher, grpc::ClientContext& call,
           absl::Time first_deadline) {
    while (!finished_.load()) {
      if (catcher.WaitFor(kPollStep)) {
        interrupted_ = true;
        call.TryCancel();
        return;
      }
      if (!got_first_.load() && absl::Now() > first_deadline) {
        timed_out_ = true;
        call.TryCancel();
        return;
      }
    }
  }

  std::atomic<bool> got_first_{false};
  std::atomic<bool> finished_{false};
  std::atomic<bool> interrupted_{false};
  std::atomic<bool> timed_out_{false};
  std::thread thread_;  // last: starts once the flags exist
};

// Prints each update until the stream ends or --count is reached (then
// cancels the call and returns true).
bool PrintUpdates(const CommandContext& context, const std::string& address,
                  grpc::ClientReader<admin::ServerStatus>& reader,
                  grpc::ClientContext& call, Canceller& canceller) {
  admin::ServerStatus status;
  int64_t updates = 0;
  while (reader.Read(&status)) {
    canceller.GotFirst();
    Print(context, address, status);
    if (context.options.count > 0 && ++updates >= context.options.count) {
      call.TryCancel();
      return true;
    }
  }
  return false;
}

// The exit status once the stream is over.
int Ending(const CommandContext& context, const std::string& address,
           const grpc::Status& finish, bool enough,
           const Canceller& canceller) {
  if (enough || canceller.interrupted()) return kExitOk;
  if (canceller.timed_out()) {
    return context.CallFailed(
        address,
        grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "no first update"));
  }
  if (finish.ok()) {
    context.err << "upperctl: " << address << " ended the watch (draining)\n";
    return kExitOk;
  }
  return context.CallFailed(address, finish);
}

}  // namespace

int RunWatch(const CommandContext& context) {
  int exit_code = kExitOk;
  if (!context.RequireNoArguments(&exit_code) ||
      !context.RequireSingleTarget(&exit_code)) {
    return exit_code;
  }

  absl::StatusOr<std::unique_ptr<InterruptCatcher>> catcher =
      InterruptCatcher::Install();
  if (!catcher.ok()) {
    context.err << "upperctl: " << catcher.status().message() << '\n';
    return kExitServerError;
  }
  AdminClient client(context.targets.list.front(), context.options);
  grpc::ClientContext call;
  client.Prepare(call, /*deadline=*/false);
  std::unique_ptr<grpc::ClientReader<admin::ServerStatus>> reader =
      client.WatchStatus(&call, context.options.interval);
  if (reader == nullptr) {
    return context.CallFailed(
        client.address(),
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "address did not resolve"));
  }

  Canceller canceller(**catcher, call, absl::Now() + context.options.timeout);
  const bool enough =
      PrintUpdates(context, client.address(), *reader, call, canceller);
  const grpc::Status finish = reader->Finish();
  canceller.Stop();
  return Ending(context, client.address(), finish, enough, canceller);
}

}  // namespace upper::ctl
