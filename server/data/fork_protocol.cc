#include "server/data/fork_protocol.h"
