// A grpc.health.v1.Health/Check client without generated code.
//
// Debian ships no health.proto for C++, and a second compiled copy of the
// grpc.health.v1 descriptors next to one that upperd's side might add would
// clash in protobuf's descriptor pool. The two messages are one field each,
// so they are encoded by hand here: HealthCheckRequest{string service = 1},
// HealthCheckResponse{ServingStatus status = 1}.
//
// Thread-safe as grpc::Channel is.
#pragma once

#include <memory>
#include <string>

#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"

namespace upper::ctl {

// Calls Check for `service` ("" = the whole server). On OK, `*serving` is
// "SERVING", "NOT_SERVING", "UNKNOWN", "SERVICE_UNKNOWN" or "STATUS_<n>".
grpc::Status CheckHealth(std::shared_ptr<grpc::Channel> channel,
                         grpc::ClientContext* context,
                         const std::string& service, std::string* serving);

// The wire codec, exposed for tests.
std::string EncodeHealthCheckRequest(const std::string& service);
// False when `bytes` is not a HealthCheckResponse.
bool DecodeHealthCheckResponse(const std::string& bytes, int* status);
std::string ServingStatusName(int status);

}  // namespace upper::ctl
