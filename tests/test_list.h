/* Every test group, in the order they run. One line per group. */
TEST_GROUP(log)
TEST_GROUP(commands)
TEST_GROUP(http)
TEST_GROUP(config)
TEST_GROUP(config_watch)
TEST_GROUP(filter)
TEST_GROUP(sse)
TEST_GROUP(png)
