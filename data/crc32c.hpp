// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord framing
// uses it. The SSE4.2 crc32 instruction is used when the CPU has it (chosen
// once at run time), otherwise a slicing-by-8 table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace petal::data {

// CRC32C of `size` bytes, continuing from `crc` (0 for a fresh checksum).
std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t size);
inline std::uint32_t crc32c(const void* data, std::size_t size) { return crc32c_extend(0, data, size); }
inline std::uint32_t crc32c(std::string_view bytes) { return crc32c(bytes.data(), bytes.size()); }

// The portable table version (exposed so tests can compare both paths).
std::uint32_t crc32c_extend_table(std::uint32_t crc, const void* data, std::size_t size);
// True when crc32c_extend uses the SSE4.2 instruction.
bool crc32c_uses_hardware();

// TFRecord's masking: rotate right by 15 and add a constant, so that a CRC of
// data that itself contains CRCs stays well distributed.
constexpr std::uint32_t mask_crc(std::uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
constexpr std::uint32_t unmask_crc(std::uint32_t masked) {
  const std::uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

}  // namespace petal::data
