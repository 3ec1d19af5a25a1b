/* Every test group, in the order they run. One line per group. */
TEST_GROUP(log)
TEST_GROUP(commands)
TEST_GROUP(discord_session)
TEST_GROUP(discord_gateway)
