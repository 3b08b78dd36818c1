// Crash-safe file replacement. The content goes to `<name>.tmp.<pid>` in the
// target's folder, is flushed to disk (fsync), renamed over the target, and
// the folder is fsynced so the rename itself survives a power cut. A kill at
// any moment leaves the old complete file or the new complete file under the
// target's name, never a part of one, plus at most a temporary.
//
// Temporaries left by killed processes are removed the next time the same
// target is written: `<name>.tmp.<pid>` where no process `pid` exists. Per
// target rather than per folder on purpose: a writer only touches names
// derived from the file it owns, so it never deletes temporaries of other
// programs sharing the folder, and the library needs no start-up call.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string_view>

namespace petal {

// Writes through `write(append)`, where append(bytes) adds bytes to the file.
// Throws IOError naming the file on any failure (the temporary is removed,
// the target keeps its old content). An exception thrown by `write` itself
// propagates the same way.
using AppendBytes = std::function<void(const void* data, std::size_t size)>;
void write_file_atomic(const std::filesystem::path& path, const std::function<void(const AppendBytes&)>& write);
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);
void write_text_file_atomic(const std::filesystem::path& path, std::string_view text);

// "<target>.tmp.<pid>" of this process.
std::filesystem::path atomic_temporary_path(const std::filesystem::path& target);

// Removes the temporaries of `target` ("<target>.tmp.<pid>") whose process
// no longer exists; returns how many. Temporaries of live processes
// (including this one) are kept. write_file_atomic calls it first.
std::size_t remove_stale_temporaries(const std::filesystem::path& target);

}  // namespace petal
