"""The `caratflow` command: start-up validation, planning, listing runs and dead letters."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from emulator.server import RunningEmulator


def printed_value(pattern: str, text: str) -> str:
    """What the command printed for the pattern's group (a key id, a secret)."""
    match = re.search(pattern, text)
    assert match, f"{pattern} not in: {text}"
    return match.group(1)


def caratflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def env(database_url: str, tmp_path) -> dict[str, str]:
    return {
        **os.environ,
        "CARATFLOW_LOCAL_SETTINGS": str(tmp_path / "none.json"),
        "CARATFLOW_LOG_DIR": str(tmp_path / "logs"),  # not the project's log
        "DATABASE_URL": database_url,
        "SCAN_STORE_DIR": str(tmp_path / "scans"),
        "FEED_RATE_LIMIT_PER_SECOND": "500",
    }


def test_invalid_setting_stops_start_up_naming_it(env) -> None:
    result = caratflow("runs", env={**env, "FEED_PAGE_SIZE": "500"})
    assert result.returncode == 2
    assert "FEED_PAGE_SIZE" in result.stderr


def test_plan_prints_partitions_of_the_emulator_inventory(env) -> None:
    with RunningEmulator(size=5000, seed=4) as feed:
        result = caratflow(
            "plan",
            "--feed",
            "nivoda-natural",
            env={
                **env,
                "NIVODA_ENDPOINT": feed.url,
                "NIVODA_USERNAME": feed.config.username,
                "PLAN_TARGET_PARTITION_SIZE": "500",
            },
        )
        natural = feed.inventory.truth(False)
    assert result.returncode == 0, result.stderr
    assert f"nivoda-natural: full plan, {natural:,} stones in" in result.stdout
    assert "balance max/mean" in result.stdout
    assert result.stdout.count("open") == 1  # exactly one open-ended partition, the last


def test_runs_and_dead_letters_on_an_empty_database(env) -> None:
    assert caratflow("runs", env=env).stdout == ""
    assert caratflow("dead-letters", "list", env=env).stdout == ""
    missing = caratflow("runs", "00000000-0000-0000-0000-000000000000", env=env)
    assert missing.returncode == 1
    assert "no run" in missing.stderr


def test_sync_then_runs_lists_and_shows_it(env) -> None:
    with RunningEmulator(size=3000, seed=6) as feed:
        feed_env = {
            **env,
            "NIVODA_ENDPOINT": feed.url,
            "NIVODA_USERNAME": feed.config.username,
            "PLAN_TARGET_PARTITION_SIZE": "400",
        }
        synced = caratflow("sync", "--feed", "nivoda-natural", "--full", env=feed_env)
        assert synced.returncode == 0, synced.stderr
        assert "nivoda-natural full run" in synced.stdout
        assert ": succeeded" in synced.stdout
    listing = caratflow("runs", env=env)
    assert listing.returncode == 0
    (line,) = listing.stdout.splitlines()
    run_id = line.split()[0]
    assert "nivoda-natural" in line
    assert "succeeded" in line
    shown = caratflow("runs", run_id, env=env)
    assert shown.returncode == 0
    assert '"status": "succeeded"' in shown.stdout
    partitions = [row for row in shown.stdout.splitlines() if row.startswith("  #")]
    assert len(partitions) > 1
    assert all("fetched" in row for row in partitions)


def test_dead_letters_list_and_replay(env, pool, tmp_path) -> None:
    from datetime import UTC, datetime

    from emulator.config import FaultSettings
    from shared.config import load_settings
    from shared.feed.registry import get_feed
    from shared.planning.plan import plan_full
    from shared.planning.store import LocalScanStore

    with RunningEmulator(size=3000, seed=6) as feed:
        feed_env = {
            **env,
            "NIVODA_ENDPOINT": feed.url,
            "NIVODA_USERNAME": feed.config.username,
            "PLAN_TARGET_PARTITION_SIZE": "400",
            "SYNC_MIN_SUCCESS_SHARE": "0.5",
            "SYNC_FETCH_ATTEMPTS": "1",
            "FEED_MAX_ATTEMPTS": "1",
        }
        spec = get_feed("nivoda-natural")
        settings = load_settings(
            nivoda_endpoint=feed.url, nivoda_username=feed.config.username, feed_rate_limit_per_second=500
        )
        preview = plan_full(
            spec,
            spec.open_source(settings, pool),
            LocalScanStore(tmp_path / "preview"),
            target_size=400,
            max_partitions=200,
            now=datetime.now(UTC),
        )
        feed.faults.replace(FaultSettings(failing_dpc_from=[preview.partitions[2].dpc_from]))
        partial = caratflow("sync", "--feed", "nivoda-natural", "--full", env=feed_env)
        assert partial.returncode == 1  # a partial success is not a success
        assert "partially_succeeded" in partial.stdout
        letters = caratflow("dead-letters", "list", env=env)
        (line,) = letters.stdout.splitlines()
        assert "partition #2" in line
        assert "open" in line
        run_id = line.split()[2]

        feed.faults.replace(FaultSettings())
        replayed = caratflow("dead-letters", "replay", run_id, env=feed_env)
        assert replayed.returncode == 0, replayed.stderr
        assert ": succeeded" in replayed.stdout
    assert "replayed" in caratflow("dead-letters", "list", env=env).stdout


def test_keys_create_list_rotate_revoke(env, tmp_path) -> None:
    import json

    env = {**env, "LOCAL_SECRETS_PATH": str(tmp_path / "secrets.json")}
    created = caratflow("keys", "create", "shop-1", "--scope", "search", "--scope", "admin", env=env)
    assert created.returncode == 0, created.stderr
    key_id = printed_value(r"CARATFLOW_KEY_ID=(ck[0-9a-f]{16})", created.stdout)
    secret = printed_value(r"CARATFLOW_API_SECRET=(\S+)", created.stdout)
    rotated = caratflow("keys", "rotate", key_id, "--overlap-hours", "2", env=env)
    assert rotated.returncode == 0, rotated.stderr
    new_secret = printed_value(r"CARATFLOW_API_SECRET=(\S+)", rotated.stdout)
    assert new_secret != secret
    listed = caratflow("keys", "list", env=env)
    (entry,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert entry["key_id"] == key_id
    assert entry["scopes"] == ["admin", "search"]
    assert len(entry["secrets"]) == 2
    assert entry["secrets"][0]["expires_at"] is not None
    assert entry["secrets"][1]["expires_at"] is None
    assert secret not in listed.stdout
    assert new_secret not in listed.stdout
    assert caratflow("keys", "revoke", "--key", key_id, env=env).returncode == 0
    (revoked,) = [json.loads(line) for line in caratflow("keys", "list", env=env).stdout.splitlines()]
    assert revoked["revoked_at"] is not None
    missing = caratflow("keys", "rotate", "ck0000000000000000", env=env)
    assert missing.returncode == 1
    assert "no active key" in missing.stdout


def test_rotating_the_server_key_keeps_the_previous_one_verifying(env, database_url) -> None:
    import psycopg

    from shared.access import server_keys

    with psycopg.connect(database_url) as conn:
        before = server_keys.load(conn)
    rotated = caratflow("keys", "rotate-server-key", env=env)
    assert rotated.returncode == 0, rotated.stderr
    with psycopg.connect(database_url) as conn:
        after = server_keys.load(conn)
    assert after.signing_version == before.signing_version + 1
    assert f"server key {after.signing_version} now signs" in rotated.stdout
    token = before.seal(b"test", b"payload")
    assert after.unseal(b"test", token) == b"payload"


@pytest.mark.slow
def test_sync_outlives_a_restart_of_its_database(tmp_path) -> None:
    """The database of `caratflow sync` (its run and the local host's state) stops for real mid-run and
    starts again: the command keeps going, says so in one line each way, and the run succeeds."""
    import time

    import psycopg
    from own_cluster import own_cluster

    with own_cluster(tmp_path) as cluster, RunningEmulator(size=6000, seed=11, latency_ms=20) as feed:
        env = {
            **os.environ,
            "CARATFLOW_LOCAL_SETTINGS": str(tmp_path / "none.json"),
            "CARATFLOW_LOG_DIR": str(tmp_path / "logs"),  # not the project's log
            "DATABASE_URL": cluster.url,
            "SCAN_STORE_DIR": str(tmp_path / "scans"),
            "NIVODA_ENDPOINT": feed.url,
            "NIVODA_USERNAME": feed.config.username,
            "NIVODA_PASSWORD": feed.config.password.get_secret_value(),
            "FEED_RATE_LIMIT_PER_SECOND": "500",
            "PLAN_TARGET_PARTITION_SIZE": "400",
            # Enough durable retries to outlast the outage: 1, 2, 4, 8 s apart.
            "SYNC_FETCH_RETRY_FIRST_SECONDS": "1",
        }
        sync = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "sync", "--feed", "nivoda-natural", "--full"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert sync.stderr is not None  # stderr=PIPE
        try:
            with psycopg.connect(cluster.url, autocommit=True) as conn:
                while not conn.execute("SELECT 1 FROM partitions WHERE status = 'fetched'").fetchone():
                    assert sync.poll() is None, sync.stderr.read()[-3000:]
                    time.sleep(0.05)
            cluster.stop()
            time.sleep(2)  # several polls of the watcher and of the host's loops fail meanwhile
            cluster.start()
            out, err = sync.communicate(timeout=240)
        finally:
            if sync.poll() is None:
                sync.kill()
    assert sync.returncode == 0, err[-3000:]
    assert "Traceback" not in out + err, err[-3000:]
    lost = [line for line in out.splitlines() if line.startswith("database unavailable")]
    back = [line for line in out.splitlines() if line.startswith("database back after")]
    assert len(lost) == 1, out
    assert len(back) == 1, out
    assert ": succeeded" in out
