// The provider's wire format: Firebase Cloud Messaging HTTP v1 (and any
// gateway that speaks it). One POST per device:
//   POST <url>   Authorization: Bearer <auth token>   Content-Type: application/json
//   {"message":{"token":"...","notification":{"title":"...","body":"..."},
//               "data":{"guild":"1","kind":"7","payload":"<base64>"}}}
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "push_metrics.hpp"
#include "push_request.hpp"

namespace hearth::push {

std::string base64(std::string_view bytes);
// The JSON string literal (with quotes) for `text`; invalid UTF-8 becomes U+FFFD.
std::string json_string(std::string_view text);

// The request body. Payloads larger than `payload_limit` bytes are left out
// (data.payload_omitted = "1"): FCM refuses data above 4 KiB.
std::string fcm_body(const PushRequest& request, std::size_t payload_limit);

// What to do with a finished attempt.
struct Outcome {
  enum class Action { kDelivered, kRetry, kFail } action = Action::kFail;
  FailReason reason = FailReason::kRejected;  // kRetry: why, if it comes to failing
};
// `status`: the HTTP status, 0 when there was no response (`timed_out` says why).
Outcome classify(long status, bool timed_out, std::string_view response_body);

}  // namespace hearth::push
