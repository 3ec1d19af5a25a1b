/* Every benchmark, in the order `make bench` runs them. One line each. */
BENCH(log)
BENCH(discord_gateway)
