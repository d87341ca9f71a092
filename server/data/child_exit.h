// child_exit: the three steps of handling a child's exit, in the order that
// keeps its pid meaningful: peek (waitid WNOWAIT: the child stays a zombie,
// so its pid cannot be reused), release its slot, then reap.
//
// A process that dies between the peek and the release leaves the zombie to
// its subreaper (upperd), which peeks it again and finds its slot; one that
// dies between the release and the reap leaves a zombie whose slot is free
// already. Either way each slot is released exactly once, and a slot never
// names a pid that another process may hold.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "server/data/connection_table.h"

namespace upper {

struct ExitedChild {
  pid_t pid = 0;
  int status = 0;  // as waitpid() reports it
};

// The next child of this process that has exited, left unreaped; nullopt
// when none has (or there are no children).
std::optional<ExitedChild> PeekExitedChild();

// Child `pid` if it has exited, left unreaped; else nullopt.
std::optional<ExitedChild> PeekExitedChild(pid_t pid);

// Reaps child `pid` (which PeekExitedChild reported).
void ReapChild(pid_t pid);

// "exit 3", "signal Segmentation fault".
std::string DescribeWaitStatus(int status);

// Logs a counted crash once, with its connection, pid and signal or status.
void LogWorkerCrash(const WorkerCrash& crash);

}  // namespace upper
