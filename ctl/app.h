// upperctl as a function: parses the command line, finds the command in
// the table, resolves --addr and runs the command; every failure ends as
// one line on `err` and an exit status from exit_codes.h. upperctl_main.cc
// only wires the process's streams to it.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace upper::ctl {

// `argv[0]` is the program name. `stdout_is_tty` selects watch's redraw.
int RunUpperctl(const std::vector<std::string>& argv, std::ostream& out,
                std::ostream& err, bool stdout_is_tty);

// The --help text.
std::string HelpText();

}  // namespace upper::ctl
