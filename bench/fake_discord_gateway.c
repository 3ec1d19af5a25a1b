/* The benchmark build links the bench folder's sources and the library
 * only; this unit compiles the fake Discord gateway from tests/ into it, so
 * both use one source. (Adding the tests/fake sources to BENCH_SRC in the
 * Makefile would make this file unnecessary.) */
#include "tests/fake/discord_gateway.c"
