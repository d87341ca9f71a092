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

#include "absl/strings/str_cat.h"
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

}  // namespace

int RunWatch(const CommandContext& context) {
  if (!context.args.empty()) {
    return context.UsageError(absl::StrCat("watch takes no arguments, got \"",
                                           context.args[0], "\""));
  }
  int exit_code = kExitOk;
  if (!context.RequireSingleTarget(&exit_code)) return exit_code;

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

  std::atomic<bool> got_first{false};
  std::atomic<bool> finished{false};
  std::atomic<bool> interrupted{false};
  std::atomic<bool> timed_out{false};
  const absl::Time first_deadline = absl::Now() + context.options.timeout;
  // Ends when the call is over, a signal came, or the first update is late.
  std::thread canceller([&] {
    while (!finished.load()) {
      if ((*catcher)->WaitFor(kPollStep)) {
        interrupted = true;
        call.TryCancel();
        return;
      }
      if (!got_first.load() && absl::Now() > first_deadline) {
        timed_out = true;
        call.TryCancel();
        return;
      }
    }
  });

  admin::ServerStatus status;
  int64_t updates = 0;
  bool enough = false;
  while (reader->Read(&status)) {
    got_first = true;
    Print(context, client.address(), status);
    if (context.options.count > 0 && ++updates >= context.options.count) {
      enough = true;
      call.TryCancel();
      break;
    }
  }
  const grpc::Status finish = reader->Finish();
  finished = true;
  canceller.join();

  if (enough || interrupted) return kExitOk;
  if (timed_out) {
    return context.CallFailed(
        client.address(),
        grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "no first update"));
  }
  if (finish.ok()) {
    context.err << "upperctl: " << client.address()
                << " ended the watch (draining)\n";
    return kExitOk;
  }
  return context.CallFailed(client.address(), finish);
}

}  // namespace upper::ctl
