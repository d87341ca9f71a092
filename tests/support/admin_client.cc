#include "tests/support/admin_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/support/proc.h"

namespace upper::testing {
namespace {

namespace reflection = grpc::reflection::v1alpha;

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

// One request on the reflection stream, one response back.
absl::StatusOr<reflection::ServerReflectionResponse> AskReflection(
    grpc::Channel& channel, const reflection::ServerReflectionRequest& request,
    const std::string& token = "") {
  auto stub = reflection::ServerReflection::NewStub(
      std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  std::unique_ptr<grpc::ClientContext> context = Context(token);
  auto stream = stub->ServerReflectionInfo(context.get());
  reflection::ServerReflectionResponse response;
  const bool wrote = stream->Write(request);
  const bool read = wrote && stream->Read(&response);
  stream->WritesDone();
  const grpc::Status status = stream->Finish();
  if (!status.ok()) return FromGrpc(status);
  if (!read) return absl::InternalError("reflection sent no response");
  if (response.has_error_response()) {
    return absl::Status(
        static_cast<absl::StatusCode>(response.error_response().error_code()),
        response.error_response().error_message());
  }
  return response;
}

}  // namespace

std::shared_ptr<grpc::Channel> AdminChannel(uint16_t port) {
  return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                             grpc::InsecureChannelCredentials());
}

std::shared_ptr<grpc::Channel> AdminTlsChannel(uint16_t port,
                                               const std::string& root_pem,
                                               const std::string& server_name) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = root_pem;
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride(server_name);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::SslCredentials(options), args);
}

std::unique_ptr<grpc::ClientContext> Context(const std::string& token,
                                             absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  if (!token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  }
  return context;
}

absl::StatusOr<admin::v1::ServerStatus> GetStatus(
    admin::v1::AdminService::Stub& stub, const std::string& token) {
  std::unique_ptr<grpc::ClientContext> context = Context(token);
  admin::v1::ServerStatus status;
  const grpc::Status s =
      stub.GetStatus(context.get(), admin::v1::GetStatusRequest(), &status);
  if (!s.ok()) return FromGrpc(s);
  return status;
}

absl::StatusOr<std::vector<admin::v1::Connection>> ListConnections(
    admin::v1::AdminService::Stub& stub, const std::string& token) {
  std::vector<admin::v1::Connection> all;
  admin::v1::ListConnectionsRequest request;
  // Bounded: the tests hold far fewer than 10,000 default pages.
  for (int pages = 0; pages < 10000; ++pages) {
    std::unique_ptr<grpc::ClientContext> context = Context(token);
    admin::v1::ListConnectionsResponse response;
    const grpc::Status s =
        stub.ListConnections(context.get(), request, &response);
    if (!s.ok()) return FromGrpc(s);
    all.insert(all.end(), response.connections().begin(),
               response.connections().end());
    if (response.next_page_token().empty()) return all;
    request.set_page_token(response.next_page_token());
  }
  return absl::InternalError("ListConnections: more than 10000 pages");
}

grpc::StatusCode CloseConnectionCode(admin::v1::AdminService::Stub& stub,
                                     uint64_t id) {
  admin::v1::CloseConnectionRequest request;
  request.set_id(id);
  admin::v1::CloseConnectionResponse response;
  return stub.CloseConnection(Context().get(), request, &response).error_code();
}

uint64_t OnlyLiveConnectionId(admin::v1::AdminService::Stub& stub) {
  absl::StatusOr<std::vector<admin::v1::Connection>> live =
      ListConnections(stub);
  return live.ok() && live->size() == 1 ? live->front().id() : 0;
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus>
CheckHealth(grpc::Channel& channel, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(
      std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  std::unique_ptr<grpc::ClientContext> context = Context();
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status s = stub->Check(context.get(), request, &response);
  if (!s.ok()) return FromGrpc(s);
  return response.status();
}

absl::StatusOr<std::vector<std::string>> ReflectionListServices(
    grpc::Channel& channel, const std::string& token) {
  reflection::ServerReflectionRequest request;
  request.set_list_services("*");
  absl::StatusOr<reflection::ServerReflectionResponse> response =
      AskReflection(channel, request, token);
  if (!response.ok()) return response.status();
  std::vector<std::string> names;
  for (const auto& service : response->list_services_response().service()) {
    names.push_back(service.name());
  }
  return names;
}

absl::StatusOr<std::vector<std::string>> ReflectionFilesForSymbol(
    grpc::Channel& channel, const std::string& symbol) {
  reflection::ServerReflectionRequest request;
  request.set_file_containing_symbol(symbol);
  absl::StatusOr<reflection::ServerReflectionResponse> response =
      AskReflection(channel, request);
  if (!response.ok()) return response.status();
  std::vector<std::string> names;
  for (const std::string& bytes :
       response->file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    if (!file.ParseFromString(bytes)) {
      return absl::DataLossError("reflection sent an unparsable descriptor");
    }
    names.push_back(file.name());
  }
  return names;
}

const admin::v1::ModeStats& PerMode(const admin::v1::ServerStatus& status,
                                    admin::v1::Mode mode) {
  for (const admin::v1::ModeStats& m : status.per_mode()) {
    if (m.mode() == mode) return m;
  }
  static const admin::v1::ModeStats kNone;
  ADD_FAILURE() << "no per_mode entry for " << admin::v1::Mode_Name(mode);
  return kNone;
}

pid_t ParentPid(pid_t pid) {
  const std::optional<ProcStat> stat = ReadProcStat(pid);
  return stat ? stat->ppid : -1;
}

bool IsThreadOf(pid_t pid, pid_t tid) {
  struct stat st;
  return tid > 0 &&
         stat(absl::StrCat("/proc/", pid, "/task/", tid).c_str(), &st) == 0;
}

uint16_t LocalPort(int fd) {
  sockaddr_in addr = {};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  return ntohs(addr.sin_port);
}

absl::Status RunShell(const std::string& command) {
  const int status = std::system(command.c_str());
  if (status != 0) {
    return absl::InternalError(
        absl::StrCat("`", command, "` failed with status ", status));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MakeTempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(
      base != nullptr && *base != '\0' ? base : "/tmp", "/upper_test_XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::ErrnoToStatus(errno, "mkdtemp");
  }
  return pattern;
}

absl::Status WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

}  // namespace upper::testing
