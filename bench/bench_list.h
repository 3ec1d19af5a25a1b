/* Every benchmark, in the order `make bench` runs them. One line each. */
BENCH(log)
BENCH(http)
BENCH(sse)
BENCH(ledger)
BENCH(discord_gateway)
BENCH(metrics)
