// Tests for upper-client: the library's parts in-process, and the real
// upper-client binary as a child process. Both talk to TestServer, a small
// upper-casing stand-in for upperd on 127.0.0.1. Every wait is bounded: a
// stuck child is killed, a stuck CopyDuplex has its socket shut down.
#include "client/upper_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <future>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#ifndef UPPER_CLIENT_PATH
#error "UPPER_CLIENT_PATH must be the path of the upper-client binary"
#endif

namespace upper {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::upper::UniqueFd;
using ::upper::client::ConnectTo;
using ::upper::client::CopyDuplex;
using ::upper::client::FormatHostPort;
using ::upper::client::HostPort;
using ::upper::client::ParseAddress;
using Clock = std::chrono::steady_clock;

constexpr auto kTimeout = std::chrono::seconds(30);
constexpr size_t kBigPayloadSize = 8 << 20;

std::string UpperCased(std::string_view data) {
  std::string result(data);
  for (char& c : result) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return result;
}

std::string RandomBytes(size_t size) {
  std::mt19937 random(20240601);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string result(size, '\0');
  for (char& c : result) c = static_cast<char>(byte(random));
  return result;
}

int MillisUntil(Clock::time_point deadline) {
  const auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(left.count(), 0));
}

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Pipe MakePipe() {
  int fds[2] = {-1, -1};
  EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0) << std::strerror(errno);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

std::string Address(uint16_t port) {
  return "127.0.0.1:" + std::to_string(port);
}

// A stand-in for upperd on 127.0.0.1 (an ephemeral port): serves one
// connection at a time, upper-casing what it reads, and after the client's
// half-close it half-closes too. Blocks in send() when the client does not
// read, as upperd does, and soon: its socket buffers are small.
// kCloseAtOnce closes every connection unread.
class TestServer {
 public:
  enum class Mode { kUpperCase, kCloseAtOnce };

  explicit TestServer(Mode mode = Mode::kUpperCase) : mode_(mode) {
    Pipe stop = MakePipe();
    stop_reader_ = std::move(stop.read);
    stop_writer_ = std::move(stop.write);
    listen_fd_.Reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(addr);
    // Small fixed buffers (no autotuning) on the server's side of every
    // connection, so that the kernel cannot hold the big payload on its way
    // back: a client that does not read while it sends then deadlocks.
    const int buffer_size = 64 * 1024;
    if (!listen_fd_.valid() ||
        setsockopt(listen_fd_.get(), SOL_SOCKET, SO_RCVBUF, &buffer_size,
                   sizeof(buffer_size)) != 0 ||
        setsockopt(listen_fd_.get(), SOL_SOCKET, SO_SNDBUF, &buffer_size,
                   sizeof(buffer_size)) != 0 ||
        bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr),
             sizeof(addr)) != 0 ||
        listen(listen_fd_.get(), 16) != 0 ||
        getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr),
                    &length) != 0) {
      ADD_FAILURE() << "test server: " << std::strerror(errno);
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;
  ~TestServer() {
    stop_writer_.Reset();
    if (thread_.joinable()) thread_.join();
  }

  // 0 when the server could not start.
  uint16_t port() const { return port_; }

 private:
  // Waits until `fd` is readable; false once the server is stopping.
  bool WaitReadable(int fd) {
    pollfd fds[2] = {
        {.fd = fd, .events = POLLIN, .revents = 0},
        {.fd = stop_reader_.get(), .events = POLLIN, .revents = 0}};
    while (poll(fds, 2, -1) < 0) {
      if (errno != EINTR) return false;
    }
    return fds[1].revents == 0;
  }

  void Serve() {
    while (WaitReadable(listen_fd_.get())) {
      UniqueFd conn(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (conn.valid() && mode_ == Mode::kUpperCase) UpperCase(conn.get());
    }
  }

  void UpperCase(int fd) {
    std::vector<char> buffer(64 * 1024);
    while (WaitReadable(fd)) {
      const ssize_t n = read(fd, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) shutdown(fd, SHUT_WR);
      if (n <= 0) return;
      for (ssize_t i = 0; i < n; ++i) {
        buffer[i] = static_cast<char>(
            std::toupper(static_cast<unsigned char>(buffer[i])));
      }
      for (ssize_t sent = 0; sent < n;) {
        const ssize_t m = send(fd, buffer.data() + sent,
                               static_cast<size_t>(n - sent), MSG_NOSIGNAL);
        if (m < 0 && errno == EINTR) continue;
        if (m < 0) return;
        sent += m;
      }
    }
  }

  const Mode mode_;
  UniqueFd listen_fd_;
  UniqueFd stop_reader_;
  UniqueFd stop_writer_;
  uint16_t port_ = 0;
  std::thread thread_;
};

// A port on 127.0.0.1 that refuses connections: bound (so nobody else takes
// it) but not listening, for as long as the object lives.
class ClosedPort {
 public:
  ClosedPort() : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(addr);
    if (!fd_.valid() ||
        bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
            0 ||
        getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &length) !=
            0) {
      ADD_FAILURE() << "closed port: " << std::strerror(errno);
      return;
    }
    port_ = ntohs(addr.sin_port);
  }

  uint16_t port() const { return port_; }

 private:
  UniqueFd fd_;
  uint16_t port_ = 0;
};

// Runs CopyDuplex in a thread and waits at most kTimeout. On timeout the
// test fails and the socket is shut down so that the call returns.
absl::Status BoundedCopyDuplex(int in_fd, int sock_fd, int out_fd) {
  std::packaged_task<absl::Status()> task(
      [=] { return CopyDuplex(in_fd, sock_fd, out_fd); });
  std::future<absl::Status> result = task.get_future();
  std::thread thread(std::move(task));
  if (result.wait_for(kTimeout) != std::future_status::ready) {
    ADD_FAILURE() << "CopyDuplex did not return in time";
    shutdown(sock_fd, SHUT_RDWR);
  }
  thread.join();
  return result.get();
}

// Reads `fd` until end of file or until `deadline`.
std::string ReadAll(int fd, Clock::time_point deadline) {
  std::string data;
  char buffer[4096];
  while (true) {
    pollfd poll_fd = {.fd = fd, .events = POLLIN, .revents = 0};
    const int ready = poll(&poll_fd, 1, MillisUntil(deadline));
    if (ready == 0) {
      ADD_FAILURE() << "timed out reading";
      return data;
    }
    if (ready < 0 && errno == EINTR) continue;
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return data;
    data.append(buffer, static_cast<size_t>(n));
  }
}

// How a child process ended, with everything it wrote.
struct Outcome {
  bool timed_out = false;
  int exit_code = -1;  // -1 when it did not exit normally.
  int signal = 0;      // The signal that killed it, if any.
  std::string out;
  std::string err;
};

// The real upper-client binary as a child process, with pipes for its
// stdin, stdout and stderr, and exactly the environment `env`. Killed and
// reaped at destruction if still running.
class ClientProcess {
 public:
  ClientProcess(const std::vector<std::string>& flags,
                const std::vector<std::string>& env) {
    // Writing to a child that has exited must fail with EPIPE here.
    signal(SIGPIPE, SIG_IGN);
    Pipe in = MakePipe();
    Pipe out = MakePipe();
    Pipe err = MakePipe();

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in.read.get(), STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out.write.get(), STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err.write.get(), STDERR_FILENO);
    // The child gets a default SIGPIPE and no blocked signals, as from a
    // shell, whatever this process has.
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attributes, &none);
    sigset_t sigpipe;
    sigemptyset(&sigpipe);
    sigaddset(&sigpipe, SIGPIPE);
    posix_spawnattr_setsigdefault(&attributes, &sigpipe);
    posix_spawnattr_setflags(&attributes,
                             POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    std::vector<std::string> args = {UPPER_CLIENT_PATH};
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<std::string> env_copy = env;
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (std::string& var : env_copy) envp.push_back(var.data());
    envp.push_back(nullptr);

    const int rc = posix_spawn(&pid_, UPPER_CLIENT_PATH, &actions, &attributes,
                               argv.data(), envp.data());
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn " << UPPER_CLIENT_PATH << ": "
                    << std::strerror(rc);
      pid_ = -1;
      return;
    }
    stdin_ = std::move(in.write);
    stdout_ = std::move(out.read);
    stderr_ = std::move(err.read);
    for (const UniqueFd* fd : {&stdin_, &stdout_, &stderr_}) {
      fcntl(fd->get(), F_SETFL, fcntl(fd->get(), F_GETFL) | O_NONBLOCK);
    }
  }
  ClientProcess(const ClientProcess&) = delete;
  ClientProcess& operator=(const ClientProcess&) = delete;
  ~ClientProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      Reap(0);
    }
  }

  bool started() const { return pid_ > 0; }

  // Writes a little input (it must fit in the pipe) without closing stdin.
  void WriteStdin(std::string_view data) {
    EXPECT_EQ(write(stdin_.get(), data.data(), data.size()),
              static_cast<ssize_t>(data.size()));
  }

  // Reads exactly `size` bytes of stdout, or less at end of file or timeout.
  std::string ReadStdout(size_t size) {
    const Clock::time_point deadline = Clock::now() + kTimeout;
    std::string data;
    while (data.size() < size) {
      pollfd poll_fd = {.fd = stdout_.get(), .events = POLLIN, .revents = 0};
      const int ready = poll(&poll_fd, 1, MillisUntil(deadline));
      if (ready == 0) break;
      if (ready < 0 && errno == EINTR) continue;
      char buffer[4096];
      const ssize_t n = read(stdout_.get(), buffer,
                             std::min(sizeof(buffer), size - data.size()));
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) break;
      data.append(buffer, static_cast<size_t>(n));
    }
    return data;
  }

  void CloseStdout() { stdout_.Reset(); }

  // Writes `input` and closes stdin (unless told not to), collecting stdout
  // and stderr until both end and the child exits. After kTimeout the child
  // is killed instead.
  Outcome Communicate(std::string_view input, bool close_stdin = true) {
    const Clock::time_point deadline = Clock::now() + kTimeout;
    Outcome outcome;
    if (input.empty() && close_stdin) stdin_.Reset();
    while (stdout_.valid() || stderr_.valid()) {
      pollfd fds[3] = {{.fd = input.empty() ? -1 : stdin_.get(),
                        .events = POLLOUT,
                        .revents = 0},
                       {.fd = stdout_.get(), .events = POLLIN, .revents = 0},
                       {.fd = stderr_.get(), .events = POLLIN, .revents = 0}};
      const int ready = poll(fds, 3, MillisUntil(deadline));
      if (ready == 0) break;
      if (ready < 0) {
        if (errno == EINTR) continue;
        ADD_FAILURE() << "poll: " << std::strerror(errno);
        break;
      }
      if (fds[0].revents != 0) {
        const ssize_t n = write(stdin_.get(), input.data(), input.size());
        if (n > 0) input.remove_prefix(static_cast<size_t>(n));
        if ((input.empty() && close_stdin) ||
            (n < 0 && errno != EAGAIN && errno != EINTR)) {
          stdin_.Reset();
        }
      }
      if (fds[1].revents != 0) Drain(stdout_, outcome.out);
      if (fds[2].revents != 0) Drain(stderr_, outcome.err);
    }
    while (!Reap(WNOHANG, &outcome) && MillisUntil(deadline) > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (pid_ > 0) {
      outcome.timed_out = true;
      kill(pid_, SIGKILL);
      Reap(0, &outcome);
    }
    return outcome;
  }

 private:
  static void Drain(UniqueFd& fd, std::string& sink) {
    char buffer[64 * 1024];
    const ssize_t n = read(fd.get(), buffer, sizeof(buffer));
    if (n > 0) sink.append(buffer, static_cast<size_t>(n));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) fd.Reset();
  }

  // waitpid()s the child; true once it is reaped.
  bool Reap(int options, Outcome* outcome = nullptr) {
    int status = 0;
    pid_t rc;
    while ((rc = waitpid(pid_, &status, options)) < 0 && errno == EINTR) {
    }
    if (rc != pid_) return false;
    pid_ = -1;
    if (outcome != nullptr && WIFEXITED(status)) {
      outcome->exit_code = WEXITSTATUS(status);
    }
    if (outcome != nullptr && WIFSIGNALED(status)) {
      outcome->signal = WTERMSIG(status);
    }
    return true;
  }

  pid_t pid_ = -1;
  UniqueFd stdin_;
  UniqueFd stdout_;
  UniqueFd stderr_;
};

Outcome RunClient(const std::vector<std::string>& flags, std::string_view input,
                  const std::vector<std::string>& env = {}) {
  ClientProcess client(flags, env);
  if (!client.started()) return {};
  return client.Communicate(input);
}

// --- ParseAddress and FormatHostPort ---

TEST(ParseAddress, AcceptsHostAndPort) {
  const absl::StatusOr<HostPort> address = ParseAddress("localhost:9999");
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_EQ(*address, (HostPort{.host = "localhost", .port = 9999}));
}

TEST(ParseAddress, AcceptsBracketedIpv6AndDropsBrackets) {
  const absl::StatusOr<HostPort> address = ParseAddress("[::1]:80");
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_EQ(*address, (HostPort{.host = "::1", .port = 80}));
}

TEST(ParseAddress, AcceptsBothEndsOfThePortRange) {
  EXPECT_EQ(ParseAddress("h:1").value().port, 1);
  EXPECT_EQ(ParseAddress("h:65535").value().port, 65535);
}

TEST(ParseAddress, RejectsPortOutOfRange) {
  for (const char* addr : {"h:0", "h:65536", "h:99999999999999999999"}) {
    EXPECT_EQ(ParseAddress(addr).status().code(),
              absl::StatusCode::kInvalidArgument)
        << addr;
  }
}

TEST(ParseAddress, RejectsEmptyHost) {
  for (const char* addr : {":9999", "[]:9999"}) {
    EXPECT_EQ(ParseAddress(addr).status().code(),
              absl::StatusCode::kInvalidArgument)
        << addr;
  }
}

TEST(ParseAddress, RejectsMissingPort) {
  for (const char* addr : {"", "localhost", "localhost:", "[::1]", "[::1]:"}) {
    EXPECT_EQ(ParseAddress(addr).status().code(),
              absl::StatusCode::kInvalidArgument)
        << addr;
  }
}

TEST(ParseAddress, RejectsNonDecimalPort) {
  for (const char* addr : {"h:http", "h:+80", "h:-1", "h: 80", "h:80 "}) {
    EXPECT_EQ(ParseAddress(addr).status().code(),
              absl::StatusCode::kInvalidArgument)
        << addr;
  }
}

TEST(ParseAddress, RejectsIpv6WithoutBrackets) {
  EXPECT_EQ(ParseAddress("::1:80").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ParseAddress, RejectsMalformedBrackets) {
  for (const char* addr : {"[::1:80", "[::1]80"}) {
    EXPECT_EQ(ParseAddress(addr).status().code(),
              absl::StatusCode::kInvalidArgument)
        << addr;
  }
}

TEST(ParseAddress, SaysWhichRuleTheAddressBreaks) {
  EXPECT_THAT(ParseAddress("[::1:80").status().message(),
              HasSubstr("missing ']'"));
  EXPECT_THAT(ParseAddress("[::1]80").status().message(),
              HasSubstr("expected \":port\" after ']'"));
  EXPECT_THAT(ParseAddress("[]:80").status().message(),
              HasSubstr("missing host"));
  EXPECT_THAT(ParseAddress("[]").status().message(), HasSubstr("missing host"));
  EXPECT_THAT(ParseAddress("h").status().message(),
              HasSubstr("missing \":port\""));
  EXPECT_THAT(ParseAddress("::1:80").status().message(),
              HasSubstr("write an IPv6 address in brackets"));
  EXPECT_THAT(ParseAddress("h:0").status().message(),
              HasSubstr("the port must be a number in 1..65535"));
}

TEST(ParseAddress, ErrorNamesTheValueOnOneLine) {
  EXPECT_THAT(ParseAddress("localhost:0").status().message(),
              HasSubstr("\"localhost:0\""));
  EXPECT_THAT(ParseAddress("a\nb").status().message(),
              ::testing::Not(HasSubstr("\n")));
}

TEST(FormatHostPort, BracketsIpv6Hosts) {
  EXPECT_EQ(FormatHostPort({.host = "::1", .port = 80}), "[::1]:80");
  EXPECT_EQ(FormatHostPort({.host = "localhost", .port = 80}), "localhost:80");
}

// --- ConnectTo ---

TEST(ConnectTo, ConnectsWithNoDelayAndCloseOnExec) {
  TestServer server;
  ASSERT_NE(server.port(), 0);
  absl::StatusOr<UniqueFd> sock =
      ConnectTo({.host = "127.0.0.1", .port = server.port()});
  ASSERT_TRUE(sock.ok()) << sock.status();
  int no_delay = 0;
  socklen_t length = sizeof(no_delay);
  ASSERT_EQ(
      getsockopt(sock->get(), IPPROTO_TCP, TCP_NODELAY, &no_delay, &length), 0);
  EXPECT_NE(no_delay, 0);
  EXPECT_NE(fcntl(sock->get(), F_GETFD) & FD_CLOEXEC, 0);
}

TEST(ConnectTo, TriesEveryResolvedAddress) {
  // "localhost" usually resolves to ::1 first; the server is on IPv4 only.
  TestServer server;
  ASSERT_NE(server.port(), 0);
  absl::StatusOr<UniqueFd> sock =
      ConnectTo({.host = "localhost", .port = server.port()});
  EXPECT_TRUE(sock.ok()) << sock.status();
}

TEST(ConnectTo, RefusedConnectionNamesAddressAndReason) {
  ClosedPort closed;
  ASSERT_NE(closed.port(), 0);
  const absl::StatusOr<UniqueFd> sock =
      ConnectTo({.host = "127.0.0.1", .port = closed.port()});
  ASSERT_FALSE(sock.ok());
  EXPECT_EQ(sock.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(sock.status().message(), HasSubstr(Address(closed.port())));
  EXPECT_THAT(sock.status().message(), HasSubstr(std::strerror(ECONNREFUSED)));
}

// --- CopyDuplex, in-process ---

TEST(CopyDuplex, CopiesInputThroughServerToOutput) {
  TestServer server;
  ASSERT_NE(server.port(), 0);
  absl::StatusOr<UniqueFd> sock =
      ConnectTo({.host = "127.0.0.1", .port = server.port()});
  ASSERT_TRUE(sock.ok()) << sock.status();
  Pipe in = MakePipe();
  Pipe out = MakePipe();
  ASSERT_EQ(write(in.write.get(), "hello, World 1\n", 15), 15);
  in.write.Reset();

  EXPECT_TRUE(
      BoundedCopyDuplex(in.read.get(), sock->get(), out.write.get()).ok());
  out.write.Reset();
  EXPECT_EQ(ReadAll(out.read.get(), Clock::now() + kTimeout),
            "HELLO, WORLD 1\n");
}

TEST(CopyDuplex, FailsWithoutHangingWhenServerClosesBeforeEndOfInput) {
  TestServer server(TestServer::Mode::kCloseAtOnce);
  ASSERT_NE(server.port(), 0);
  absl::StatusOr<UniqueFd> sock =
      ConnectTo({.host = "127.0.0.1", .port = server.port()});
  ASSERT_TRUE(sock.ok()) << sock.status();
  Pipe in = MakePipe();  // Stays open and empty, like an idle terminal.
  Pipe out = MakePipe();

  const absl::Status status =
      BoundedCopyDuplex(in.read.get(), sock->get(), out.write.get());
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr("before the end of input"));
}

TEST(CopyDuplex, BrokenOutputIsAnErrorNotASignal) {
  // With SIGPIPE at its default action a stray SIGPIPE would kill the test.
  const sighandler_t previous = signal(SIGPIPE, SIG_DFL);
  TestServer server;
  ASSERT_NE(server.port(), 0);
  absl::StatusOr<UniqueFd> sock =
      ConnectTo({.host = "127.0.0.1", .port = server.port()});
  ASSERT_TRUE(sock.ok()) << sock.status();
  Pipe in = MakePipe();
  Pipe out = MakePipe();
  ASSERT_EQ(write(in.write.get(), "hello\n", 6), 6);
  out.read.Reset();

  const absl::Status status =
      BoundedCopyDuplex(in.read.get(), sock->get(), out.write.get());
  EXPECT_THAT(status.message(), HasSubstr(std::strerror(EPIPE)));
  signal(SIGPIPE, previous);
}

// --- The upper-client binary ---

TEST(UpperClientBinary, EchoHelloPrintsUppercase) {
  TestServer server;
  ASSERT_NE(server.port(), 0);
  const Outcome outcome =
      RunClient({"--addr=" + Address(server.port())}, "hello\n");
  EXPECT_FALSE(outcome.timed_out);
  EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.out, "HELLO\n");
  EXPECT_EQ(outcome.err, "");
}

TEST(UpperClientBinary, Returns8MiBRandomBinaryPayloadExactly) {
  // The server blocks writing back until the client reads, so this also
  // proves that the client reads while it sends.
  TestServer server;
  ASSERT_NE(server.port(), 0);
  const std::string input = RandomBytes(kBigPayloadSize);
  const Outcome outcome =
      RunClient({"--addr=" + Address(server.port())}, input);
  EXPECT_FALSE(outcome.timed_out);
  EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.out.size(), input.size());
  EXPECT_TRUE(outcome.out == UpperCased(input)) << "output differs";
}

TEST(UpperClientBinary, ForwardsEachLineWithoutWaitingForEndOfInput) {
  TestServer server;
  ASSERT_NE(server.port(), 0);
  ClientProcess client({"--addr=" + Address(server.port())}, {});
  ASSERT_TRUE(client.started());
  client.WriteStdin("first line\n");
  EXPECT_EQ(client.ReadStdout(11), "FIRST LINE\n");
  client.WriteStdin("second\n");
  EXPECT_EQ(client.ReadStdout(7), "SECOND\n");
  const Outcome outcome = client.Communicate("");
  EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.out, "");
}

TEST(UpperClientBinary, UsesEnvironmentAddressWhenFlagIsAbsent) {
  TestServer server;
  ASSERT_NE(server.port(), 0);
  const Outcome outcome =
      RunClient({}, "env\n", {"UPPER_CLIENT_ADDR=" + Address(server.port())});
  EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.out, "ENV\n");
}

TEST(UpperClientBinary, FlagWinsOverEnvironment) {
  TestServer server;
  ASSERT_NE(server.port(), 0);
  const Outcome outcome =
      RunClient({"--addr=" + Address(server.port())}, "flag\n",
                {"UPPER_CLIENT_ADDR=not an address"});
  EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_EQ(outcome.out, "FLAG\n");
}

// abseil lists only the flags of the files it takes for the program's own;
// a moved main.cc once made --help list none.
TEST(UpperClientBinary, HelpListsTheAddrFlag) {
  const Outcome outcome = RunClient({"--help"}, "");
  EXPECT_THAT(outcome.out + outcome.err, HasSubstr("--addr ("));
  EXPECT_THAT(outcome.out + outcome.err, HasSubstr("UPPER_CLIENT_ADDR"));
}

TEST(UpperClientBinary, BadAddrFlagExits2WithOneLineNamingTheFlag) {
  const Outcome outcome = RunClient({"--addr=localhost:0"}, "");
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_THAT(outcome.err, StartsWith("upper-client: --addr: "));
  EXPECT_THAT(outcome.err, HasSubstr("localhost:0"));
  EXPECT_EQ(std::count(outcome.err.begin(), outcome.err.end(), '\n'), 1);
}

TEST(UpperClientBinary, BadEnvironmentAddressExits2NamingTheVariable) {
  const Outcome outcome = RunClient({}, "", {"UPPER_CLIENT_ADDR=:9999"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_THAT(outcome.err, StartsWith("upper-client: UPPER_CLIENT_ADDR: "));
}

TEST(UpperClientBinary, PositionalArgumentExits2WithUsage) {
  const Outcome outcome = RunClient({"stray"}, "");
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_THAT(outcome.err, HasSubstr("usage: upper-client"));
  EXPECT_EQ(std::count(outcome.err.begin(), outcome.err.end(), '\n'), 1);
}

TEST(UpperClientBinary, ClosedPortExits3WithOneLineNamingTheAddress) {
  ClosedPort closed;
  ASSERT_NE(closed.port(), 0);
  const Outcome outcome =
      RunClient({"--addr=" + Address(closed.port())}, "hello\n");
  EXPECT_EQ(outcome.exit_code, 3);
  EXPECT_THAT(outcome.err, StartsWith("upper-client: "));
  EXPECT_THAT(outcome.err, HasSubstr(Address(closed.port())));
  EXPECT_EQ(std::count(outcome.err.begin(), outcome.err.end(), '\n'), 1);
}

TEST(UpperClientBinary, ClosedStdoutExits1InsteadOfDyingOfSigpipe) {
  // Like `upper-client < big | head -c1`.
  TestServer server;
  ASSERT_NE(server.port(), 0);
  ClientProcess client({"--addr=" + Address(server.port())}, {});
  ASSERT_TRUE(client.started());
  client.WriteStdin("abc");
  EXPECT_EQ(client.ReadStdout(1), "A");
  client.CloseStdout();
  const Outcome outcome = client.Communicate(RandomBytes(kBigPayloadSize));
  EXPECT_FALSE(outcome.timed_out);
  EXPECT_EQ(outcome.signal, 0);
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_THAT(outcome.err, HasSubstr(std::strerror(EPIPE)));
  EXPECT_EQ(std::count(outcome.err.begin(), outcome.err.end(), '\n'), 1);
}

TEST(UpperClientBinary, ServerClosingBeforeEndOfInputExits1) {
  TestServer server(TestServer::Mode::kCloseAtOnce);
  ASSERT_NE(server.port(), 0);
  ClientProcess client({"--addr=" + Address(server.port())}, {});
  ASSERT_TRUE(client.started());
  // stdin stays open, like an idle terminal: the client must notice alone.
  const Outcome outcome = client.Communicate("", /*close_stdin=*/false);
  EXPECT_FALSE(outcome.timed_out);
  EXPECT_EQ(outcome.exit_code, 1) << outcome.err;
  EXPECT_THAT(outcome.err, HasSubstr("before the end of input"));
}

}  // namespace
}  // namespace upper
