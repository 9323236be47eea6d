// Decoding MessagePack that clients and publishers sent, for the bundled
// plugins. Not part of the public API: plugins built out of tree bring their
// own decoder (docs/plugins.md says why they need the same bounds).
#pragma once

#include <cstddef>
#include <msgpack.hpp>

namespace hearth::plugins {

// Client and publisher bytes are untrusted: sizes and depth are bounded, so a
// crafted header (an array "of 4 billion") is refused before anything is
// allocated. Throws msgpack's exceptions (std::exception) on bad input.
inline msgpack::object_handle unpack_untrusted(const void* data, std::size_t size) {
  return msgpack::unpack(static_cast<const char*>(data), size, nullptr, nullptr,
                         msgpack::unpack_limit(/*array=*/100000, /*map=*/1000, /*str=*/1 << 20,
                                               /*bin=*/1 << 20, /*ext=*/1024, /*depth=*/8));
}

}  // namespace hearth::plugins
