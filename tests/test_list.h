/* Every test group, in the order they run. One line per group. */
TEST_GROUP(log)
TEST_GROUP(ledger)
TEST_GROUP(store)
TEST_GROUP(ledger_tamper)
TEST_GROUP(ledger_model)
TEST_GROUP(ledger_crash)
