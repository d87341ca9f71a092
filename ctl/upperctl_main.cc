// upperctl: the command-line client of upperd's admin port. All logic is in
// the upper_ctl library (app.h); main only wires the process to it.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "ctl/app.h"
#include "grpc/support/log.h"

namespace {

// gRPC's own log lines would break upperctl's one-line errors; its
// failures reach the user as call statuses instead.
void DropGrpcLog(gpr_log_func_args* /*args*/) {}

}  // namespace

int main(int argc, char** argv) {
  gpr_set_log_function(&DropGrpcLog);
  std::ios::sync_with_stdio(false);
  return upper::ctl::RunUpperctl(std::vector<std::string>(argv, argv + argc),
                                 std::cout, std::cerr, isatty(STDOUT_FILENO));
}
