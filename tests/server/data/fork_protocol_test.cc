#include "server/data/fork_protocol.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/unique_fd.h"
#include "gtest/gtest.h"

namespace upper {
namespace {

using Outcome = ReceivedForkRequest::Outcome;

// Both ends of a SOCK_SEQPACKET socketpair, as upperd and its fork server
// hold them. `receiver` is non-blocking so that a test never hangs.
struct Channel {
  UniqueFd sender;
  UniqueFd receiver;
};

Channel MakeChannel() {
  int pair[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0)
      << std::strerror(errno);
  EXPECT_EQ(fcntl(pair[1], F_SETFL, O_NONBLOCK), 0);
  return {UniqueFd(pair[0]), UniqueFd(pair[1])};
}

// A pipe whose read end is non-blocking: it reads EOF (0) once every copy of
// the write end is closed, -1/EAGAIN while one is still open somewhere.
struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Pipe MakePipe() {
  int fds[2];
  EXPECT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0) << std::strerror(errno);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// True when no copy of `p`'s write end is open any more (ours included).
bool WriteEndIsClosedEverywhere(Pipe& p) {
  p.write.Reset();
  char byte;
  return read(p.read.get(), &byte, 1) == 0;
}

// Sends `size` bytes of `data` with `fds` as SCM_RIGHTS, the way no correct
// upperd would (or the way it does, for a matching size and one fd).
void SendRaw(int socket, const void* data, size_t size,
             const std::vector<int>& fds) {
  iovec iov = {const_cast<void*>(data), size};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)] = {};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ASSERT_EQ(sendmsg(socket, &msg, MSG_NOSIGNAL), static_cast<ssize_t>(size))
      << std::strerror(errno);
}

TEST(ForkProtocol, RequestRoundTripsSlotGenerationAndSocket) {
  Channel channel = MakeChannel();
  Pipe conn = MakePipe();
  ASSERT_TRUE(
      SendForkRequest(channel.sender.get(), {7, 42}, conn.write.get()).ok());

  ReceivedForkRequest received = ReceiveForkRequest(channel.receiver.get());
  ASSERT_EQ(received.outcome, Outcome::kRequest);
  EXPECT_EQ(received.request.slot, 7u);
  EXPECT_EQ(received.request.generation, 42u);
  EXPECT_EQ(received.bytes, static_cast<ssize_t>(sizeof(ForkRequest)));
  EXPECT_FALSE(received.truncated);
  ASSERT_TRUE(received.conn.valid());
  EXPECT_NE(received.conn.get(), conn.write.get());  // a copy, not the same fd
  EXPECT_EQ(fcntl(received.conn.get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  // It is the same pipe: what goes in one end comes out of ours.
  ASSERT_EQ(write(received.conn.get(), "x", 1), 1);
  char byte = 0;
  EXPECT_EQ(read(conn.read.get(), &byte, 1), 1);
  EXPECT_EQ(byte, 'x');
  // The received copy is the only one left after ours closes; dropping it
  // closes the pipe: it is owned, not leaked.
  received.conn.Reset();
  EXPECT_TRUE(WriteEndIsClosedEverywhere(conn));
}

TEST(ForkProtocol, SecondSocketIsClosedAndTheFirstIsKept) {
  Channel channel = MakeChannel();
  Pipe first = MakePipe();
  Pipe second = MakePipe();
  const ForkRequest request = {3, 1};
  SendRaw(channel.sender.get(), &request, sizeof(request),
          {first.write.get(), second.write.get()});

  ReceivedForkRequest received = ReceiveForkRequest(channel.receiver.get());
  ASSERT_EQ(received.outcome, Outcome::kRequest);
  EXPECT_EQ(received.request.slot, 3u);
  EXPECT_FALSE(received.truncated);
  ASSERT_TRUE(received.conn.valid());
  EXPECT_TRUE(WriteEndIsClosedEverywhere(second));
  EXPECT_FALSE(WriteEndIsClosedEverywhere(first));  // `conn` holds it
}

TEST(ForkProtocol, RequestWithoutASocketComesWithNoneAndNoTruncation) {
  Channel channel = MakeChannel();
  const ForkRequest request = {5, 9};
  SendRaw(channel.sender.get(), &request, sizeof(request), {});

  // The fork server frees such a slot as fork_failed.
  const ReceivedForkRequest received =
      ReceiveForkRequest(channel.receiver.get());
  ASSERT_EQ(received.outcome, Outcome::kRequest);
  EXPECT_EQ(received.request.slot, 5u);
  EXPECT_FALSE(received.conn.valid());
  EXPECT_FALSE(received.truncated);
}

TEST(ForkProtocol, ShortMessageIsMalformedAndItsSocketClosed) {
  Channel channel = MakeChannel();
  Pipe conn = MakePipe();
  const uint32_t half = 7;
  SendRaw(channel.sender.get(), &half, sizeof(half), {conn.write.get()});

  const ReceivedForkRequest received =
      ReceiveForkRequest(channel.receiver.get());
  EXPECT_EQ(received.outcome, Outcome::kMalformed);
  EXPECT_EQ(received.bytes, static_cast<ssize_t>(sizeof(half)));
  EXPECT_FALSE(received.conn.valid());
  EXPECT_TRUE(WriteEndIsClosedEverywhere(conn));
}

TEST(ForkProtocol, MoreSocketsThanFitAreTruncatedAndNoneLeaks) {
  Channel channel = MakeChannel();
  std::vector<Pipe> pipes;
  std::vector<int> fds;
  for (int i = 0; i < 6; ++i) {
    pipes.push_back(MakePipe());
    fds.push_back(pipes.back().write.get());
  }
  const ForkRequest request = {1, 1};
  SendRaw(channel.sender.get(), &request, sizeof(request), fds);

  ReceivedForkRequest received = ReceiveForkRequest(channel.receiver.get());
  ASSERT_EQ(received.outcome, Outcome::kRequest);
  EXPECT_TRUE(received.truncated);
  ASSERT_TRUE(received.conn.valid());
  for (size_t i = 1; i < pipes.size(); ++i) {
    EXPECT_TRUE(WriteEndIsClosedEverywhere(pipes[i])) << "fd " << i;
  }
  EXPECT_FALSE(WriteEndIsClosedEverywhere(pipes[0]));
}

TEST(ForkProtocol, SocketLostAtTheFdLimitIsReportedAsTruncated) {
  Channel channel = MakeChannel();
  Pipe conn = MakePipe();
  ASSERT_TRUE(
      SendForkRequest(channel.sender.get(), {2, 4}, conn.write.get()).ok());
  // Lower the limit to the lowest free fd number: the next fd cannot be
  // installed, as when the fork server holds as many fds as it may.
  rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  const int lowest_free = dup(0);
  ASSERT_GE(lowest_free, 0);
  close(lowest_free);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(lowest_free);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
  ReceivedForkRequest received = ReceiveForkRequest(channel.receiver.get());
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);

  ASSERT_EQ(received.outcome, Outcome::kRequest);
  EXPECT_EQ(received.request.slot, 2u);
  EXPECT_FALSE(received.conn.valid());
  EXPECT_TRUE(received.truncated);  // the fork server counts fd_exhausted
  EXPECT_TRUE(WriteEndIsClosedEverywhere(conn));  // the kernel closed it
}

TEST(ForkProtocol, NothingToReadIsRetryAndAClosedPeerIsClosed) {
  Channel channel = MakeChannel();
  EXPECT_EQ(ReceiveForkRequest(channel.receiver.get()).outcome,
            Outcome::kRetry);
  channel.sender.Reset();
  EXPECT_EQ(ReceiveForkRequest(channel.receiver.get()).outcome,
            Outcome::kClosed);
}

TEST(ForkProtocol, SendingToAGoneForkServerIsAnErrorNamingTheCall) {
  Channel channel = MakeChannel();
  Pipe conn = MakePipe();
  channel.receiver.Reset();
  const absl::Status s =
      SendForkRequest(channel.sender.get(), {0, 0}, conn.write.get()).status();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("sendmsg(fork server)"), std::string::npos) << s;
}

// upperd's end is non-blocking: a fork server that takes nothing fills the
// socket buffer, and then a send says "full" (false) at once, sends nothing
// (the receiver gets exactly the requests reported sent, in order), and the
// request goes once the receiver took one.
TEST(ForkProtocol, AFullSocketSaysSoAtOnceAndSendsNothing) {
  Channel channel = MakeChannel();
  ASSERT_EQ(fcntl(channel.sender.get(), F_SETFL, O_NONBLOCK), 0);
  Pipe conn = MakePipe();
  uint32_t sent = 0;
  absl::StatusOr<bool> r = true;
  for (; sent < 100000; ++sent) {
    r = SendForkRequest(channel.sender.get(), {sent, 1}, conn.write.get());
    if (!r.ok() || !*r) break;
  }
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(*r);
  EXPECT_GT(sent, 0u);
  ReceivedForkRequest first = ReceiveForkRequest(channel.receiver.get());
  ASSERT_EQ(first.outcome, Outcome::kRequest);
  EXPECT_EQ(first.request.slot, 0u);
  // One datagram taken: room for one more, which goes whole.
  r = SendForkRequest(channel.sender.get(), {sent, 1}, conn.write.get());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(*r);
  for (uint32_t i = 1; i <= sent; ++i) {
    ReceivedForkRequest next = ReceiveForkRequest(channel.receiver.get());
    ASSERT_EQ(next.outcome, Outcome::kRequest) << i;
    EXPECT_EQ(next.request.slot, i);
    EXPECT_TRUE(next.conn.valid());
  }
  EXPECT_EQ(ReceiveForkRequest(channel.receiver.get()).outcome,
            Outcome::kRetry);
}

}  // namespace
}  // namespace upper
