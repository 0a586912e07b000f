"""The repricing orchestration on the local host against a catalogue synced from the feed emulator:
activation and revert compared row by row, a sync consolidating while a job runs, a cancel."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from pricing_api import assert_priced_under

from shared.db.rows import one
from shared.pricing import repricing, repricing_batches, sets
from shared.pricing.audit import Actor
from shared.pricing.repricing_starts import REPRICE, reprice_request
from shared.pricing.rules import PricingRule
from shared.runs.starts import sync_instance_id, sync_request

ALICE = Actor.operator("alice")
FEED = "nivoda-natural"
PRICES = """SELECT diamond_id, price_cents, price_per_carat_cents, pricing_version, pricing_rule_id
            FROM diamonds ORDER BY diamond_id"""


@pytest.fixture
def conn(database_url: str):
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def new_version(conn: psycopg.Connection) -> int:
    rules = [
        PricingRule(priority=10, name="round GIA", shapes=["ROUND"], labs=["GIA"], markup_percent=Decimal(18),
                    rounding="charm", rounding_step_cents=1000, rounding_ending_cents=900),
        PricingRule(priority=20, name="clean", clarities=["FL", "IF", "VVS1", "VVS2"], markup_percent=Decimal(33),
                    floor_cents=25_000),
        PricingRule(priority=1000, name="everything else", markup_percent=Decimal("21.5"), rounding="dollar"),
    ]  # fmt: skip
    return sets.create(conn, ALICE, sets.RuleSetContent(note="host test", rules=rules)).pricing_version


def reprice(runtime: Any, job: repricing.Job, *, batch_size: int = 250, timeout: float = 120) -> dict[str, Any]:
    """Run the job's orchestration to its end; its output."""
    request = reprice_request(job.job_id, batch_size=batch_size, slice_seconds=0.5)
    instance = runtime.client.start_new(REPRICE, repricing.instance_id(job.job_id), request)
    status = runtime.client.wait_for_completion(instance, timeout=timeout)
    assert status.runtime_status == "Completed", status.error
    assert status.custom_status["status"] == status.output["status"]  # the last progress shown
    output: dict[str, Any] = status.output
    return output


def dataset_version(conn: psycopg.Connection) -> int:
    return int(one(conn.execute("SELECT version FROM dataset_version").fetchone())[0])


@pytest.mark.slow
def test_activation_then_revert_on_the_local_host(runtime, run_sync, conn) -> None:
    run_sync(FEED)
    original = conn.execute(PRICES).fetchall()
    etag = dataset_version(conn)

    job = repricing.begin(conn, new_version(conn), ALICE, "new season")
    done = reprice(runtime, job)

    assert (done["status"], done["target_version"], done["previous_version"]) == ("succeeded", 2, 1)
    assert done["stones"] == done["total"] == assert_priced_under(conn, 2) > 1000
    assert done["batches"] >= done["total"] // 250
    assert dataset_version(conn) > etag
    assert conn.execute(PRICES).fetchall() != original

    back = repricing.begin(conn, 1, ALICE, "back to the defaults")
    assert reprice(runtime, back)["status"] == "succeeded"
    assert conn.execute(PRICES).fetchall() == original  # every price exactly as under version 1
    assert_priced_under(conn, 1)


@pytest.mark.slow
def test_a_sync_consolidating_while_a_job_runs_ends_under_the_active_version(runtime, run_sync, feed, conn) -> None:
    run_sync(FEED)
    # The feed moves: the next full run has thousands of stones to consolidate, sold ones to delist.
    feed.inventory.tick(repriced=0.4, added=0.15, sold=0.05)
    job = repricing.begin(conn, new_version(conn), ALICE, "during a sync")
    sync = runtime.client.start_new("sync_run", sync_instance_id(FEED), sync_request(FEED, "full", "cli"))
    job_instance = runtime.client.start_new(
        REPRICE, repricing.instance_id(job.job_id), reprice_request(job.job_id, batch_size=40, slice_seconds=0.2)
    )
    synced = runtime.client.wait_for_completion(sync, timeout=180)
    repriced = runtime.client.wait_for_completion(job_instance, timeout=180)
    assert (synced.runtime_status, synced.output["status"]) == ("Completed", "succeeded"), synced.output
    assert (repriced.runtime_status, repriced.output["status"]) == ("Completed", "succeeded"), repriced.output

    assert_priced_under(conn, 2)
    finished = repricing.load_job(conn, job.job_id)
    run = one(conn.execute("SELECT started_at, finished_at FROM runs ORDER BY started_at DESC LIMIT 1").fetchone())
    assert finished.started_at is not None
    assert finished.finished_at is not None
    assert finished.started_at < run[1]
    assert run[0] < finished.finished_at
    # Consolidation priced the stones it wrote after the activation under the new version.
    (under_new,) = one(
        conn.execute("SELECT count(*) FROM price_history WHERE run_id IS NOT NULL AND pricing_version = 2").fetchone()
    )
    assert under_new > 0


@pytest.mark.slow
def test_a_cancelled_job_goes_back_to_the_previous_prices(runtime, run_sync, conn, pool) -> None:
    run_sync(FEED)
    original = conn.execute(PRICES).fetchall()
    job = repricing.begin(conn, new_version(conn), ALICE, "to be cancelled")
    repricing.start(conn, job.job_id)
    repricing_batches.advance(pool, job.job_id, batch_size=200, max_batches=3)
    assert conn.execute(PRICES).fetchall() != original
    repricing.request_cancel(conn, job.job_id, "operator:bob")

    done = reprice(runtime, job)

    assert (done["status"], done["pass_version"]) == ("cancelled", 1)
    assert conn.execute(PRICES).fetchall() == original
    assert one(conn.execute("SELECT pricing_version FROM pricing_rule_sets WHERE status = 'active'").fetchone()) == (1,)


def test_the_instance_id_names_the_job() -> None:
    job_id = uuid.UUID(int=7)
    assert repricing.instance_id(job_id) == f"reprice-{job_id}"
    request = reprice_request(job_id, batch_size=5)
    assert (request["job_id"], request["batch_size"], "correlation_id" in request) == (str(job_id), 5, True)


def test_an_activity_out_of_retries_fails_the_job_not_the_orchestration() -> None:
    from fake_orchestration import FakeOrchestrationContext, Fakes, orchestrators_of, run

    import function_app

    def progress(**fields: Any) -> dict[str, Any]:
        return {"job_id": "j", "status": "running", "finished": False, **fields}

    def advance(request: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("Activity function 'advance_repricing' failed: connection lost")

    world = Fakes(
        activities={
            "start_repricing": lambda request: progress(),
            "advance_repricing": advance,
            "fail_repricing": lambda request: progress(status="failed", finished=True, error=request["error"]),
        }
    )
    context = FakeOrchestrationContext(world, {"job_id": "j", "batch_size": 10, "slice_seconds": 1}, "reprice-j")
    result = run(orchestrators_of(function_app.app)[REPRICE], context)
    assert result["status"] == "failed"
    assert "connection lost" in result["error"]
    assert [call.name for call in world.calls] == ["start_repricing", "advance_repricing", "fail_repricing"]
    assert context.custom_statuses[-1] == result
