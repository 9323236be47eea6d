// `hearth token`: mints signed client tokens for `hearth node --auth signed`
// (docs/security.md, "Client authentication").
#pragma once

namespace hearth::cli {

// argv[0] stands for the program name, options follow; returns the exit status.
int run_token(int argc, char** argv);

}  // namespace hearth::cli
