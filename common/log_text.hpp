// Peer-supplied text (routing ids, node names, error texts) made safe for a
// log line: an attacker must not be able to start a new line, move the
// cursor, or hide bytes in a terminal.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace hearth {

// Printable ASCII is kept; backslash, control characters and bytes >= 0x7f
// become \\ and \xNN. At most `max_bytes` of the input are shown; a longer
// input ends with "...(N bytes)".
std::string printable(std::string_view text, std::size_t max_bytes = 96);

}  // namespace hearth
