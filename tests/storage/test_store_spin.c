/* The loop polls for the store's answers (store_options.spin_us): while an
 * answer is awaited it goes round without sleeping, for spin_us at most
 * after the last submit, and then sleeps until the answer wakes it; once
 * every answer is in, it sleeps as before. It does not poll while more
 * than four answers are awaited (under load), nor for a while after its
 * polls ran out of time unanswered. The group `store_spin`. */
#include "tests/test.h"

#include "base/util.h"
#include "tests/storage/store_db.h"

#include <stdint.h>

/* What the loop did while the store's thread was held: its rounds, by
 * when they came after the submit. */
struct spin_watch {
    uv_check_t check;
    uv_timer_t timer;
    struct store_gate *gate;
    uint64_t t0;
    uint64_t early_to; /* ns after t0: the rounds before count as early */
    uint64_t late_from, late_to;
    unsigned early, late, after;
    bool answered;
};

static void spin_round(uv_check_t *check)
{
    struct spin_watch *w = container_of(check, struct spin_watch, check);
    uint64_t at = uv_hrtime() - w->t0;
    if (w->answered)
        w->after++;
    else if (at < w->early_to)
        w->early++;
    else if (at >= w->late_from && at < w->late_to)
        w->late++;
}

static void spin_release(uv_timer_t *timer)
{
    struct spin_watch *w = container_of(timer, struct spin_watch, timer);
    uv_sem_post(&w->gate->open);
}

static void spin_quiet(uv_timer_t *timer)
{
    (void)timer;
}

struct spin_job {
    struct store_job job;
    bool done;
};

static int spin_job_run(struct store_txn *txn, struct store_job *job)
{
    (void)txn;
    (void)job;
    return 0;
}

static void spin_job_done(struct store_job *job, int rc)
{
    assert_int_equal(rc, 0);
    ((struct spin_job *)job)->done = true;
}

#define SPIN_MORE_MAX 8

/* Hold started store s for release_ms (with `more` jobs queued behind
 * the one held), then let its answers come, and watch the loop for
 * quiet_ms more. */
static void spin_trip(struct store *s, uv_loop_t *loop, uint64_t release_ms, unsigned more,
                      uint64_t quiet_ms, struct spin_watch *w)
{
    struct store_gate gate;
    w->gate = &gate;
    w->t0 = uv_hrtime();
    store_gate_hold(s, &gate); /* submitted; its answer waits for the timer */
    struct spin_job jobs[SPIN_MORE_MAX] = {0};
    assert_true(more <= SPIN_MORE_MAX);
    for (unsigned i = 0; i < more; i++) {
        jobs[i].job.run = spin_job_run;
        jobs[i].job.done = spin_job_done;
        assert_int_equal(store_submit(s, &jobs[i].job), 0);
    }
    assert_int_equal(uv_check_init(loop, &w->check), 0);
    assert_int_equal(uv_check_start(&w->check, spin_round), 0);
    assert_int_equal(uv_timer_init(loop, &w->timer), 0);
    assert_int_equal(uv_timer_start(&w->timer, spin_release, release_ms, 0), 0);
    while (!gate.done || (more > 0 && !jobs[more - 1].done))
        uv_run(loop, UV_RUN_ONCE);
    w->answered = true;
    /* Answered: the loop has nothing to wait for but this timer (a round
     * whose timers ran first still waits for I/O: none of 0 ms). */
    if (quiet_ms > 0) {
        assert_int_equal(uv_timer_start(&w->timer, spin_quiet, quiet_ms, 0), 0);
        while (uv_is_active((uv_handle_t *)&w->timer))
            uv_run(loop, UV_RUN_ONCE);
    }
    uv_sem_destroy(&gate.open);
    uv_sem_destroy(&gate.entered);
    uv_close((uv_handle_t *)&w->check, NULL);
    uv_close((uv_handle_t *)&w->timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* The same on a store of its own, polling for spin_us; 60 ms of quiet. */
static void spin_run(unsigned spin_us, uint64_t release_ms, unsigned more, struct spin_watch *w)
{
    struct store_db d;
    store_db_init(&d, STORE_BACKEND_SQLITE);
    d.opts.spin_us = spin_us;
    uv_loop_t loop;
    struct store *s = store_db_open(&d);
    store_db_start(s, &loop);
    spin_trip(s, &loop, release_ms, more, 60, w);
    store_db_stop(s, &loop);
    store_db_done(&d);
}

/* Polling for 50 ms: the loop goes round and round at first, then sleeps
 * until the answer comes at 200 ms, and sleeps once it has it. (The
 * windows are wide: on a busy machine the store's thread may take a few
 * ms to take the job, and the loop's rounds come slower.) */
static void test_loop_polls_then_sleeps(void **state)
{
    (void)state;
    if (uv_available_parallelism() < 2)
        skip(); /* never polls there (store.h) */
    struct spin_watch w = {.early_to = 40000000u, .late_from = 100000000u, .late_to = 190000000u};
    spin_run(50000, 200, 0, &w);
    /* Tens of thousands of rounds at full speed; a slow build makes fewer. */
    assert_true(w.early >= 20);
    assert_int_equal(w.late, 0);
    /* The round that ran the answer's callback, and the timer's: no more. */
    assert_true(w.after <= 3);
}

/* Polling for a whole second, answered at 60 ms: the loop sleeps as soon
 * as it has the answer, not when the second is over. */
static void test_loop_sleeps_once_answered(void **state)
{
    (void)state;
    if (uv_available_parallelism() < 2)
        skip();
    struct spin_watch w = {.early_to = 50000000u};
    spin_run(1000000, 60, 0, &w);
    assert_true(w.early >= 20);
    assert_true(w.after <= 3);
}

/* Not polling (spin_us 0, what tests and tools open): the loop sleeps
 * from the start. */
static void test_no_polling_when_off(void **state)
{
    (void)state;
    struct spin_watch w = {.early_to = 60000000u, .late_from = 60000000u, .late_to = 60000000u};
    spin_run(0, 80, 0, &w);
    assert_true(w.early <= 2);
    assert_true(w.after <= 3);
}

/* Five answers awaited (more than STORE_SPIN_WAITING_MAX): the loop
 * sleeps, as under load, where the answers come in batches. */
static void test_no_polling_under_load(void **state)
{
    (void)state;
    struct spin_watch w = {.early_to = 60000000u, .late_from = 60000000u, .late_to = 60000000u};
    spin_run(1000000, 80, 4, &w);
    assert_true(w.early <= 3);
    assert_true(w.after <= 3);
}

/* Answers slower than spin_us (50 ms, the store held for 120), eight in a
 * row: the loop stops polling
 * for the next 256 submits (its CPU was spent for nothing), then polls
 * again. */
static void test_slow_answers_stop_polling(void **state)
{
    (void)state;
    if (uv_available_parallelism() < 2)
        skip();
    struct store_db d;
    store_db_init(&d, STORE_BACKEND_SQLITE);
    d.opts.spin_us = 50000;
    uv_loop_t loop;
    struct store *s = store_db_open(&d);
    store_db_start(s, &loop);
    for (int i = 0; i < 8; i++) {
        struct spin_watch w = {.early_to = 40000000u};
        spin_trip(s, &loop, 120, 0, 0, &w);
        assert_true(w.early >= 20); /* it polled, for 50 ms, in vain */
    }
    struct spin_watch w = {.early_to = 100000000u};
    spin_trip(s, &loop, 120, 0, 0, &w);
    assert_true(w.early <= 2);
    for (int i = 0; i < 255; i++) {
        struct spin_job quick = {.job = {.run = spin_job_run, .done = spin_job_done}};
        assert_int_equal(store_submit(s, &quick.job), 0);
        while (!quick.done)
            uv_run(&loop, UV_RUN_ONCE);
    }
    struct spin_watch again = {.early_to = 40000000u};
    spin_trip(s, &loop, 120, 0, 0, &again);
    assert_true(again.early >= 20);
    store_db_stop(s, &loop);
    store_db_done(&d);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_loop_polls_then_sleeps),
    cmocka_unit_test(test_loop_sleeps_once_answered),
    cmocka_unit_test(test_no_polling_when_off),
    cmocka_unit_test(test_no_polling_under_load),
    cmocka_unit_test(test_slow_answers_stop_polling),
};

TEST_GROUP_DEFINE(store_spin, tests, NULL, NULL)
