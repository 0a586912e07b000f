"""The repricing job: bring every stone of the catalogue to one pricing version, in key-range batches.

Activating or reverting a version is a job (`repricing_jobs`, migration 0015; at most one unfinished).
When it starts, its target becomes the active version (the one before is retired), so consolidation prices
with it from then on; the job then walks the catalogue by diamond_id, each batch ONE transaction that writes
the new prices, version and rule, a price_history row per stone whose price changed, and the job's
checkpoint. A batch is applied from the checkpoint the job holds under its row lock, so a batch applied
twice (a retried or duplicated activity, a host killed and resumed) is applied once, and its UPDATE only
touches stones not yet priced under the version, so applying it again would change nothing anyway.

Every stone is repriced, listed or not: a delisted stone can be listed again by a sync's finalize without
being priced again, so only a catalogue wholly under the active version guarantees that what is listed is.
The value delta counts listed stones only (the retail value of what is on sale).

Concurrent consolidation. Activation takes pricing_rule_sets' ACCESS EXCLUSIVE lock: it waits for every
consolidation batch that read the old version (a reader holds its ACCESS SHARE lock until it commits), and a
batch that reads after it sees the new one. So once the job starts, no stone is written under the old
version any more. Stones a batch could not take (rows a consolidation batch held: SKIP LOCKED, so the two
never deadlock) or took while a writer changed them are left as they are; the job therefore ends with a
sweep of the stones under any other version, until none remain, and only then succeeds.

Cancelling. A cancel never leaves two versions behind: the version that was active before the job is
activated again, and the job reprices back the key range it had done, then sweeps the whole catalogue to
that version; only then is the job `cancelled`. At every moment the active version is the one every
stone is being brought to, and once a job has ended (succeeded or cancelled) every stone is priced under
it. A job cancelled before it started changed nothing. A job that failed (an activity out of retries) keeps
its target (or, failing while cancelling, its previous version) active, with some stones not yet under it:
`resume` carries it on from its checkpoint, and any later job converges the whole catalogue anyway. A job
that failed before it started changed nothing; its version is activated afresh.

This module holds the job's states and transitions; repricing_batches.py its batches and the loop that
applies them, repricing_starts.py the start of its orchestration (orchestrators/pricing.py).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from shared.db.rows import one
from shared.pricing import audit, sets
from shared.pricing.audit import Actor

JobKind = Literal["activate", "revert"]
JobStatus = Literal["pending", "running", "cancelling", "succeeded", "failed", "cancelled"]
UNFINISHED: tuple[JobStatus, ...] = ("pending", "running", "cancelling")
FINISHED: tuple[JobStatus, ...] = ("succeeded", "failed", "cancelled")
# Where the job's passes are; `pending` and the finished statuses have none.
MOVING: tuple[JobStatus, ...] = ("running", "cancelling")

DEFAULT_BATCH_SIZE = 10_000
# Activation waits for the consolidation batches that read the old version; never forever.
_ACTIVATION_LOCK_TIMEOUT = "60s"


class RepricingConflict(Exception):
    """The job is not in a state that allows the change asked for."""

    def __init__(self, detail: str, hint: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.hint = hint


class JobAlreadyRunning(RepricingConflict):
    """Another repricing job is unfinished (one at a time)."""


class UnknownJob(LookupError):
    pass


class UnpricedStones(RuntimeError):
    """The version has no rule for some stones (no catch-all): the job cannot bring them to it."""


@dataclass(frozen=True)
class Job:
    job_id: uuid.UUID
    kind: JobKind
    target_version: int
    previous_version: int | None
    activation_id: int | None
    status: JobStatus
    failed_in: JobStatus | None
    actor: str
    comment: str
    instance_id: str | None
    pass_version: int | None
    last_key: uuid.UUID | None
    stop_key: uuid.UUID | None
    sweeping: bool
    total: int | None
    batches: int
    stones: int
    repriced: int
    value_delta_cents: int
    cancel_requested_at: datetime | None
    cancelled_by: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def stage(self) -> str:
        """What the job is doing: pending, batches, sweep, or its final status."""
        if self.status in MOVING:
            return "sweep" if self.sweeping else "batches"
        return self.status

    def progress(self) -> dict[str, Any]:
        """A small JSON summary: the orchestration's custom status, the activities' result."""
        return {
            "job_id": str(self.job_id),
            "kind": self.kind,
            "status": self.status,
            "stage": self.stage,
            "target_version": self.target_version,
            "previous_version": self.previous_version,
            "pass_version": self.pass_version,
            "total": self.total,
            "batches": self.batches,
            "stones": self.stones,
            "repriced": self.repriced,
            "value_delta_cents": self.value_delta_cents,
            "cancel_requested": self.cancel_requested_at is not None,
            "finished": self.finished,
            "error": self.error,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_COLUMNS = sql.SQL(", ").join(sql.Identifier(name) for name in Job.__dataclass_fields__)


# --- the rules (pure) ------------------------------------------------------------------------------------


def cancel_refusal(job: Job) -> str | None:
    if job.finished:
        return f"repricing job {job.job_id} is {job.status}; it cannot be cancelled"
    return None


def resume_refusal(job: Job) -> str | None:
    if job.status != "failed":
        return f"repricing job {job.job_id} is {job.status}; only a failed job can be resumed"
    if job.failed_in == "pending":
        # It changed nothing, and its failure ended its activation: a new activation is the way on.
        return f"repricing job {job.job_id} failed before it started; activate the version again"
    return None


# --- reading ---------------------------------------------------------------------------------------------


def get_job(conn: psycopg.Connection, job_id: uuid.UUID, *, lock: bool = False) -> Job | None:
    statement = sql.SQL("SELECT {} FROM repricing_jobs WHERE job_id = %s{}").format(
        _COLUMNS, sql.SQL(" FOR UPDATE") if lock else sql.SQL("")
    )
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(statement, (job_id,)).fetchone()
    return None if row is None else Job(**row)


def load_job(conn: psycopg.Connection, job_id: uuid.UUID, *, lock: bool = False) -> Job:
    job = get_job(conn, job_id, lock=lock)
    if job is None:
        raise UnknownJob(f"no repricing job {job_id}")
    return job


def list_jobs(conn: psycopg.Connection, limit: int = 50) -> list[Job]:
    statement = sql.SQL("SELECT {} FROM repricing_jobs ORDER BY created_at DESC, job_id LIMIT %s").format(_COLUMNS)
    with conn.cursor(row_factory=dict_row) as cur:
        return [Job(**row) for row in cur.execute(statement, (limit,)).fetchall()]


# --- transitions -----------------------------------------------------------------------------------------


def begin(conn: psycopg.Connection, version: int, actor: Actor, comment: str) -> Job:
    """Begin activating (or reverting to) `version`: the lifecycle's checks and audit row
    (shared/pricing/sets.py: begin_activation) and the pending job, in one transaction. The caller then
    starts its orchestration (shared/pricing/repricing_starts.py)."""
    with conn.transaction():
        return create_job(conn, sets.begin_activation(conn, version, actor, comment))


def create_job(conn: psycopg.Connection, activation: sets.Activation, *, job_id: uuid.UUID | None = None) -> Job:
    """The pending job that runs `activation`; JobAlreadyRunning while another job is unfinished."""
    job_id = job_id or uuid.uuid4()
    try:
        with conn.transaction():
            conn.execute(
                """INSERT INTO repricing_jobs (job_id, kind, target_version, activation_id, actor, comment, instance_id)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                (
                    job_id,
                    activation.action,
                    activation.pricing_version,
                    activation.activation_id,
                    activation.actor.label,
                    activation.comment,
                    instance_id(job_id),
                ),
            )
    except psycopg.errors.UniqueViolation as exc:
        raise JobAlreadyRunning(
            "another repricing job is unfinished", "Watch it, or cancel it first: one job at a time."
        ) from exc
    return load_job(conn, job_id)


def instance_id(job_id: uuid.UUID | str) -> str:
    """The orchestration driving the job: one per job, so a second start of it is refused."""
    return f"reprice-{job_id}"


def start(conn: psycopg.Connection, job_id: uuid.UUID) -> Job:
    """pending -> running: the target becomes the active version. Again on a started job: nothing."""
    (total,) = one(conn.execute("SELECT count(*) FROM diamonds").fetchone())
    with conn.transaction():
        _lock_versions(conn)
        job = load_job(conn, job_id, lock=True)
        if job.status != "pending":
            return job
        previous = _active_version(conn)
        sets.mark_active(conn, job.target_version)
        conn.execute(
            """UPDATE repricing_jobs SET status = 'running', previous_version = %s, pass_version = target_version,
                      total = %s, started_at = now()
               WHERE job_id = %s""",
            (previous, total, job_id),
        )
    return load_job(conn, job_id)


def request_cancel(conn: psycopg.Connection, job_id: uuid.UUID, by: str) -> Job:
    """Ask the job to go back. A pending job is cancelled at once; a moving one goes back at its next
    step (see the module's docstring); a job already going back is left so."""
    with conn.transaction():
        job = load_job(conn, job_id, lock=True)
        refusal = cancel_refusal(job)
        if refusal is not None:
            raise RepricingConflict(refusal, "Only an unfinished job can be cancelled.")
        if job.cancel_requested_at is None:
            conn.execute(
                "UPDATE repricing_jobs SET cancel_requested_at = now(), cancelled_by = %s WHERE job_id = %s",
                (by, job_id),
            )
        if job.status == "pending":
            finish(conn, load_job(conn, job_id), "cancelled")
    return load_job(conn, job_id)


def resume(conn: psycopg.Connection, job_id: uuid.UUID) -> Job:
    """failed -> the pass it failed in, from its checkpoint; the caller then starts its orchestration."""
    try:
        with conn.transaction():
            job = load_job(conn, job_id, lock=True)
            refusal = resume_refusal(job)
            if refusal is not None:
                raise RepricingConflict(refusal, "Resume a job that failed.")
            conn.execute(
                """UPDATE repricing_jobs SET status = failed_in, failed_in = NULL, error = NULL, finished_at = NULL
                   WHERE job_id = %s""",
                (job_id,),
            )
    except psycopg.errors.UniqueViolation as exc:
        raise JobAlreadyRunning("another repricing job is unfinished", "Resume after it ends.") from exc
    return load_job(conn, job_id)


def fail(conn: psycopg.Connection, job_id: uuid.UUID, error: str) -> Job:
    """The job's orchestration gave up. Idempotent; a finished job stays as it ended."""
    with conn.transaction():
        job = load_job(conn, job_id, lock=True)
        if job.finished:
            return job
        conn.execute(
            """UPDATE repricing_jobs SET failed_in = status, status = 'failed', error = %s, finished_at = now()
               WHERE job_id = %s""",
            (error[:2000], job_id),
        )
        if job.activation_id is not None:
            _record_outcome(conn, load_job(conn, job_id), "failed")
    return load_job(conn, job_id)


def begin_cancel(conn: psycopg.Connection, job_id: uuid.UUID) -> None:
    """running -> cancelling: the previous version is active again; the pass goes back over what was done."""
    with conn.transaction():
        _lock_versions(conn)
        job = load_job(conn, job_id, lock=True)
        if job.status != "running" or job.cancel_requested_at is None:
            return
        back_to = job.previous_version if job.previous_version is not None else job.target_version
        if back_to != job.target_version:
            _reactivate(conn, back_to)
        # Back over the key range the forward pass did (all of it once it was sweeping); stones beyond that
        # range that consolidation priced meanwhile are found by the sweep.
        nothing_done = not job.sweeping and job.last_key is None
        conn.execute(
            """UPDATE repricing_jobs SET status = 'cancelling', pass_version = %s, last_key = NULL, stop_key = %s,
                      sweeping = %s
               WHERE job_id = %s""",
            (back_to, None if job.sweeping else job.last_key, nothing_done, job_id),
        )


def finish(conn: psycopg.Connection, job: Job, status: JobStatus) -> None:
    """End the job (in the caller's transaction) and close its activation in the audit trail."""
    conn.execute("UPDATE repricing_jobs SET status = %s, finished_at = now() WHERE job_id = %s", (status, job.job_id))
    if job.activation_id is not None:
        _record_outcome(conn, load_job(conn, job.job_id), status)


_OUTCOMES: dict[str, audit.OutcomeAction] = {
    "succeeded": "job_finished",
    "cancelled": "job_cancelled",
    "failed": "job_failed",
}


def _record_outcome(conn: psycopg.Connection, job: Job, status: JobStatus) -> None:
    assert job.activation_id is not None
    action = _OUTCOMES[status]
    duration = (job.finished_at - job.started_at) if job.finished_at and job.started_at else None
    audit.record_outcome(
        conn,
        job.activation_id,
        action,
        audit.Outcome(
            stones_repriced=job.repriced,
            value_delta_cents=job.value_delta_cents,
            duration_ms=int(duration.total_seconds() * 1000) if duration else 0,
        ),
        details={"job_id": str(job.job_id), "batches": job.batches, "stones": job.stones, "error": job.error}
        | ({"cancelled_by": job.cancelled_by} if job.cancelled_by else {}),
    )


def _lock_versions(conn: psycopg.Connection) -> None:
    """Before changing which version is active: wait for the transactions that read the old one (see the
    module's docstring). Taken first, before the job's row, by every transaction that takes both."""
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(_ACTIVATION_LOCK_TIMEOUT)))
    conn.execute("LOCK TABLE pricing_rule_sets IN ACCESS EXCLUSIVE MODE")


def _active_version(conn: psycopg.Connection) -> int | None:
    row = conn.execute("SELECT pricing_version FROM pricing_rule_sets WHERE status = 'active'").fetchone()
    return None if row is None else int(row[0])


def _reactivate(conn: psycopg.Connection, version: int) -> None:
    """A cancel's way back: `version` (the set the job replaced) is active again, the job's target retired.
    The activation is still open while the job cancels, so the lifecycle allows this move."""
    sets.mark_active(conn, version)
