"""The fault matrix's v6 cases (issue 10): EXAMPLE and PROVISIONAL runs per submission, reports as review-api-v6
summations."""

from __future__ import annotations

from fault_injection import FaultKind
from mm_contracts.models.phase import Platform
from tests.fakes.ecs import TaskScript
from tests.matrix.case import (
    DEAD_LETTERED,
    FAILED,
    FAILS,
    N1,
    NE,
    NP,
    TIMED_OUT,
    TIMED_OUT_REASON,
    Case,
    rule,
    v6_ok,
    v6_provisional_fails,
    v6_scored,
    v6_unscored,
    window,
)
from tests.matrix.setups import (
    patched_not_posted,
    report_due_invokes_lost,
    scorer_progress_summation,
    skipped_and_invoke_lost,
)

K = FaultKind
V6 = Platform.V6
V6_LONG = TaskScript(run_seconds=900)
V6_CASES: tuple[Case, ...] = (
    Case("v6 baseline: EXAMPLE and PROVISIONAL, both scored", (), (), v6_ok(), platform=V6),
    Case(
        "v6 baseline: PROVISIONAL exits 2: one FAILED summation for that phase only",
        (),
        (),
        v6_provisional_fails(),
        platform=V6,
        scripts={NP: FAILS},
    ),
    Case(
        "v6 duplicate SQS delivery at once: one task per phase",
        (K.SQS_DUPLICATE_DELIVERY,),
        (rule(K.SQS_DUPLICATE_DELIVERY, N1),),
        v6_ok(),
        platform=V6,
    ),
    Case(
        "v6 RunTask 5xx after PROVISIONAL's task started: the retry finds it, EXAMPLE unaffected",
        (K.RUN_TASK_5XX_AFTER_START,),
        (rule(K.RUN_TASK_5XX_AFTER_START, NP),),
        v6_ok(),
        platform=V6,
        scripts={N1: V6_LONG},
    ),
    Case(
        "v6 RunTask read timeout after EXAMPLE's task started (ambiguous)",
        (K.RUN_TASK_TIMEOUT_AFTER_START,),
        (rule(K.RUN_TASK_TIMEOUT_AFTER_START, NE),),
        v6_ok(),
        platform=V6,
        scripts={N1: V6_LONG},
    ),
    Case(
        "v6 crash after the first RunTask, before recording: the retry launches each phase once",
        (K.CRASH_AFTER_RUN_TASK,),
        (rule(K.CRASH_AFTER_RUN_TASK, N1),),
        v6_ok(),
        platform=V6,
        scripts={N1: V6_LONG},
    ),
    Case(
        "v6 RunTask failures[] on every EXAMPLE receive while PROVISIONAL launches once",
        (K.RUN_TASK_FAILURES,),
        (rule(K.RUN_TASK_FAILURES, NE, every=True),),
        {
            NE: v6_unscored(DEAD_LETTERED, r"Capacity", tasks_started=0, completions=0, dead_lettered_message=None),
            NP: v6_scored(dead_lettered_message=None),
        },
        platform=V6,
    ),
    Case(
        "v6 RunTask failures[] twice on EXAMPLE, then its task: PROVISIONAL never relaunched",
        (K.RUN_TASK_FAILURES,),
        (rule(K.RUN_TASK_FAILURES, NE, first_n=2),),
        v6_ok(),
        platform=V6,
    ),
    Case(
        "v6 STOPPED event of the failed PROVISIONAL run lost: reconciled, one FAILED summation",
        (K.STOPPED_EVENT_LOST,),
        (rule(K.STOPPED_EVENT_LOST, NP),),
        v6_provisional_fails(),
        platform=V6,
        scripts={NP: FAILS},
        config={"timeoutSeconds": 3600},
    ),
    Case(
        "v6 duplicate STOPPED event of the failed run: the same summation, never a second",
        (K.STOPPED_EVENT_DUPLICATE,),
        (rule(K.STOPPED_EVENT_DUPLICATE, NP),),
        v6_provisional_fails(),
        platform=V6,
        scripts={NP: FAILS},
    ),
    Case(
        "v6 scorer's in-progress summation exists, the run fails: that summation is updated, not a second",
        (),
        (),
        v6_provisional_fails(),
        platform=V6,
        scripts={NP: FAILS},
        setup=scorer_progress_summation,
        extra_check=patched_not_posted,
    ),
    Case(
        "v6 review API 5xx for 30 minutes: async retries, DLQ, the sweeper re-drives; one summation",
        (K.TOPCODER_5XX,),
        (rule(K.TOPCODER_5XX, N1, window=window(0, 1800)),),
        v6_provisional_fails(),
        platform=V6,
        scripts={NP: FAILS},
    ),
    Case(
        "v6 summation POST read timeout, nothing committed: posted once later",
        (K.TOPCODER_TIMEOUT,),
        (rule(K.TOPCODER_TIMEOUT, N1, params={"method": "POST"}),),
        v6_provisional_fails(),
        platform=V6,
        scripts={NP: FAILS},
    ),
    Case(
        "v6 summation POST slow commit (45 s): the retry lists it and writes no second",
        (K.TOPCODER_SLOW_COMMIT,),
        (rule(K.TOPCODER_SLOW_COMMIT, N1, params={"commit_delay_seconds": 45}),),
        v6_provisional_fails(),
        defect="4 on v6 (an ambiguous summation POST followed by a second POST)",
        platform=V6,
        scripts={NP: FAILS},
    ),
    Case(
        "v6 crash after the summation POST, before recording: the retry finds it",
        (K.CRASH_AFTER_REVIEW_POST,),
        (rule(K.CRASH_AFTER_REVIEW_POST, N1),),
        v6_provisional_fails(),
        platform=V6,
        scripts={NP: FAILS},
    ),
    Case(
        "v6 401, token rotated: one refresh, one summation",
        (K.TOPCODER_401_ROTATED,),
        (rule(K.TOPCODER_401_ROTATED, N1),),
        v6_provisional_fails(),
        platform=V6,
        scripts={NP: FAILS},
    ),
    Case(
        "v6 PROVISIONAL scorer past its timeout: stopped, TIMED_OUT, its summation says timed_out",
        (K.SCORER_OVERRUN,),
        (rule(K.SCORER_OVERRUN, NP),),
        {NE: v6_scored(), NP: v6_unscored(TIMED_OUT, TIMED_OUT_REASON, completions=0, tasks_started=1)},
        platform=V6,
    ),
    Case(
        "v6 submission of an inactive challenge, report-due invokes lost: the sweeper gets both summations written",
        (),
        (),
        {
            NE: v6_unscored(FAILED, r"inactive", tasks_started=0, completions=0),
            NP: v6_unscored(FAILED, r"inactive", tasks_started=0, completions=0),
        },
        platform=V6,
        via_kafka=True,
        setup=skipped_and_invoke_lost,
        extra_check=report_due_invokes_lost,
    ),
)
