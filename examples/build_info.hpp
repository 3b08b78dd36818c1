// What the examples record about the build that made them (results.json).
#pragma once

namespace petal::examples {

// The project's version (meson.build's project version).
const char* petal_version();
// The commit of the source tree when built (40 hex digits, "-dirty" appended when
// files differed from it), "unknown" outside a git checkout.
const char* petal_git_commit();

}  // namespace petal::examples
