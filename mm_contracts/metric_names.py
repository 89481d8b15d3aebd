"""Metric names: emitted by the functions (Powertools EMF), alarmed on by the monitoring construct."""

from __future__ import annotations

from enum import StrEnum

METRICS_NAMESPACE = "MMProcessor"
REASON_DIMENSION = "Reason"
ENVIRONMENT_DIMENSION = "Environment"
CHALLENGE_DIMENSION = "ChallengeId"
PHASE_DIMENSION = "Phase"  # per-run counts of the challenge processor (decision 085)
SERVICE_DIMENSION = "service"  # Powertools adds it when POWERTOOLS_SERVICE_NAME is set; named where alarms need it


class Metric(StrEnum):
    # router
    RECORDS_RECEIVED = "RecordsReceived"
    RECORDS_ROUTED = "RecordsRouted"
    RECORDS_SKIPPED = "RecordsSkipped"  # + Reason dimension
    RECORDS_REJECTED = "RecordsRejected"  # + Reason dimension
    PUBLISH_RETRIES = "PublishRetries"
    PUBLISH_FAILURES = "PublishFailures"
    # challenge processor
    TASKS_LAUNCHED = "TasksLaunched"
    LAUNCH_FAILURES = "LaunchFailures"  # + Reason dimension
    DUPLICATES_SKIPPED = "DuplicateDeliveriesSkipped"
    CONFIG_ERRORS = "ConfigErrors"
    DEAD_LETTERED = "SubmissionsDeadLettered"
    # completion
    TASKS_SUCCEEDED = "TasksSucceeded"
    TASKS_FAILED = "TasksFailed"
    TASKS_TIMED_OUT = "TasksTimedOut"
    REPORTS_SENT = "ReportsSent"
    REPORT_FAILURES = "ReportFailures"  # + Reason dimension (4xx rejected, 5xx retried)
    EVENTS_IGNORED = "EventsIgnored"  # + Reason dimension
    DUPLICATE_EVENTS = "DuplicateStoppedEvents"
    START_FAILURES_RELAUNCHED = "StartFailuresRelaunched"  # + Reason: transient TaskFailedToStart (decision 072)
    # timeout sweeper
    TASKS_STOPPED_FOR_TIMEOUT = "TasksStoppedForTimeout"
    STOPPED_EVENTS_RECONCILED = "StoppedEventsReconciled"  # non-zero: EventBridge delivery is broken
    RECONCILE_GAVE_UP = "ReconcileGaveUp"  # a submission left LAUNCHED for an operator
    ORPHAN_TASKS_STOPPED = "OrphanTasksStopped"  # a running task of ours that no item tracks (decision 071)
    ORPHAN_TASKS_ADOPTED = "OrphanTasksAdopted"  # an ambiguous launch's task recorded on its item (decision 071)
    STUCK_LAUNCHES_DEAD_LETTERED = "StuckLaunchesDeadLettered"  # launch never confirmed, message in the DLQ (080)
    REPORTS_REDRIVEN = "ReportsRedriven"  # an unfinished report sent through the completion function again (080)
    REPORT_RETRY_GAVE_UP = "ReportRetryGaveUp"  # a report left unfinished for an operator (decision 080)
    # capacity (decisions 093, 094): counts
    RUNS_ENQUEUED = "RunsEnqueued"  # a run started waiting for a slot
    RUNS_ADMITTED = "RunsAdmitted"  # a waiting run got its slot
    RUNS_CANCELLED = "RunsCancelled"  # + Reason: superseded (a waiting run cancelled or a running task stopped)
    LAUNCHES_THROTTLED = "LaunchesThrottled"  # RunTask throttled (or no pace token): the run waits again
    SLOTS_RECONCILED = "SlotsReconciled"  # + Reason: slot drift the reconciler corrected (non-zero: a crash)
    CAPACITY_CONFIG_ERRORS = "CapacityConfigErrors"  # the environment's caps are unreadable: nothing is admitted
    CAPACITY_ERRORS = "CapacityErrors"  # + Reason (release, dispatch) failed after an outcome; the sweeper repairs
    # capacity gauges, emitted by the sweeper each run (Environment, and again Environment + ChallengeId)
    RUNNING_TASKS = "RunningTasks"
    WAITING_RUNS = "WaitingRuns"
    OLDEST_WAIT_SECONDS = "OldestWaitSeconds"
    CAPACITY_FULL = "CapacityFull"  # 1 while the cap is reached with runs waiting
    # certificate monitor (decision 056)
    CLIENT_CERTIFICATE_DAYS_TO_EXPIRY = "ClientCertificateDaysToExpiry"  # a gauge (Unit None), daily
    # scorer-token refresher (decision 091)
    SCORER_TOKEN_SECONDS_TO_EXPIRY = "ScorerTokenSecondsToExpiry"  # a gauge: what the stored token has left
