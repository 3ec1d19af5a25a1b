/* What every libFuzzer target shares: the entry point's prototype (clang
 * declares it nowhere) and a split of the input into parts.
 *
 * Each target in tests/fuzz/ feeds outside bytes to one parser of the
 * daemon. `make fuzz` runs each for FUZZ_SECONDS; `make test` runs each
 * over its seed corpus (tests/fuzz/corpus/<target>/) and a few seconds
 * more, so an input that crashed once stays a regression test. */
#ifndef HB_FUZZ_H
#define HB_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input's first byte picks where to cut the rest (1..256 bytes a
 * piece), so stream parsers see every split a network could make. */
static inline size_t fuzz_piece(const uint8_t *data, size_t size)
{
    return size > 0 ? (size_t)data[0] + 1 : 1;
}

#endif
