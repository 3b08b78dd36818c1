// Atomic file replacement: the content goes to a temporary file in the same
// folder, is flushed to disk, then renamed over the target, so a crash leaves
// either the old file or the new one, never half of one.
#pragma once

#include <filesystem>
#include <functional>
#include <string_view>

namespace petal::nn {

// Writes through `write(append)`, where append(bytes) adds bytes to the file.
// Throws IOError naming the file on any failure (the temporary is removed).
using AppendBytes = std::function<void(const void* data, std::size_t size)>;
void write_file_atomic(const std::filesystem::path& path, const std::function<void(const AppendBytes&)>& write);
void write_text_file_atomic(const std::filesystem::path& path, std::string_view text);

}  // namespace petal::nn
