// upperd-fork-server: the fork server (fork_server.h) as its own small,
// statically linked program. fork() copies the caller's memory map, and
// upperd maps ~240 regions (45 shared libraries, hundreds more with gRPC)
// where this program maps about a dozen, so its children are forked and
// torn down several times faster. upperd starts it from its own directory
// when it is there, and runs the same code from its own binary otherwise.
#include "server/data/fork_server.h"

int main(int argc, char** argv) { return upper::RunForkServer(argc, argv); }
